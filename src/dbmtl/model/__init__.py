"""The transformer and its checkpoint format."""
from .config import PRESETS, ModelConfig
from .decoder import Decoder, KVCache

__all__ = ["PRESETS", "ModelConfig", "Decoder", "KVCache"]
