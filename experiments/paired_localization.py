"""Two models on the same DeepLoc test proteins: the difference in Q10 and Q2 with a paired bootstrap interval
(proteins resampled together for both models), and how many proteins only one of them gets right. Two
reports' separate intervals overlap long before a paired difference stops being clear; this is the paired
view. It scores, it does not choose: models are chosen on validation data.

    python experiments/paired_localization.py A=MODEL_DIR B=MODEL_DIR [--data-dir DIR] [--threads N]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from dbmtl.data.catalog import protein_test_sets, resolve_data_dir
from dbmtl.evaluation.metrics import paired_difference
from dbmtl.inference.predictor import Predictor
from dbmtl.tasks import PROTEIN_TASKS, TASKS


def protein_hits(predictor: Predictor, records: list) -> dict[str, np.ndarray]:
    """Per task: 1.0 / 0.0 per protein, NaN where the protein has no label for that task."""
    preds = predictor.predict([r.sequence for r in records], tasks=PROTEIN_TASKS)
    out = {}
    for task in PROTEIN_TASKS:
        field = TASKS[task].field
        out[task] = np.array([np.nan if getattr(r, field) is None else float(p.labels[task] == getattr(r, field))
                              for p, r in zip(preds, records)])
    return out


def two_models(doc: str) -> tuple[argparse.Namespace, list[tuple[str, str]]]:
    """The command line of a paired comparison (also experiments/paired_validation.py): its options and
    the two (name, model folder) pairs; sets the torch threads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("models", nargs=2, help="NAME=model folder (or 'default'), twice")
    parser.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args, [tuple(m.split("=", 1)) if "=" in m else (m, m) for m in args.models]


def main() -> None:
    args, ((name_a, model_a), (name_b, model_b)) = two_models(__doc__)
    records = protein_test_sets(resolve_data_dir(args.data_dir))["DeepLoc"]
    a, b = (protein_hits(Predictor.from_pretrained(m), records) for m in (model_a, model_b))
    print(f"| task | proteins | {name_a} | {name_b} | {name_a} - {name_b} (paired 95% CI) | only {name_a} right | only {name_b} right |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for task, label in (("loc", "Q10"), ("ms", "Q2")):
        d = paired_difference(a[task], b[task])
        lo, hi = d["difference_ci"]
        print(f"| {label} | {d['n_proteins']:,} | {100 * d['a']:.1f} | {100 * d['b']:.1f} | "
              f"{100 * d['difference']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {d['only_a']} | {d['only_b']} |")


if __name__ == "__main__":
    main()
