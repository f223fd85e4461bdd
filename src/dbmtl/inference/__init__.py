"""Sequences -> predictions: runtime set-up, windows, decoding strategies, the Predictor, writers, and
`predict_fasta`, the streaming loop every front end calls."""
from ..model.checkpoint import DEFAULT_MODEL
from .predictor import Predictor, ProteinPrediction
from .stream import PredictionRun, predict_fasta

__all__ = ["DEFAULT_MODEL", "Predictor", "ProteinPrediction", "PredictionRun", "predict_fasta"]
