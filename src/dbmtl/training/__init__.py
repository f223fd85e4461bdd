"""Training: one loop (trainer) for every model kind, the shipped onepass objective and the paper's beside it."""
from .config import TrainConfig
from .trainer import Trainer, TrainingDiverged

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged"]
