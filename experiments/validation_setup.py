"""What the validation-only experiments share: their --model / --data-dir / --threads options, and the
model with the training data it was trained on (its `localization_sources`), split as it was."""
import argparse

import torch

from dbmtl.data.catalog import TrainingData, load_training_data, resolve_data_dir
from dbmtl.inference import Predictor


def model_options(doc: str, model: str, threads: int) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default=model, help="model folder")
    ap.add_argument("--data-dir", help="data folder ($DBMTL_DATA or ../shared/data when not given)")
    ap.add_argument("--threads", type=int, default=threads, help="torch threads")
    return ap


def model_and_data(args) -> tuple[Predictor, TrainingData, str]:
    """The model of `args.model` and its training data; sets the torch threads."""
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(args.model)
    sources = (predictor.meta.get("train") or {}).get("localization_sources", "subsets")
    return predictor, load_training_data(resolve_data_dir(args.data_dir), localization_sources=sources), sources
