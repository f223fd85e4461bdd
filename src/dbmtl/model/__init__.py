"""The transformer and its checkpoint format."""
from .config import PRESETS, ModelConfig
from .transformer import KVCache, Transformer

__all__ = ["PRESETS", "ModelConfig", "Transformer", "KVCache"]
