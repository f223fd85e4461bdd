"""dbmtl: protein features from the amino-acid sequence alone, with one multi-task transformer.

    from dbmtl import Predictor
    predictions = Predictor.from_pretrained("default").predict({"HBB": "MVHLTPEEKSAVTALWGKV..."})
"""
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `dbmtl --help` and the readers do not pay for importing torch.
    if name == "Predictor":
        from .inference import Predictor

        return Predictor
    raise AttributeError(name)


__all__ = ["Predictor", "__version__"]
