"""Joint multi-task training of the decoder."""
from .config import TrainConfig
from .trainer import Trainer, TrainingDiverged

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged"]
