"""Two models on the same validation proteins: the difference in each shipped answer's accuracy with a
paired bootstrap interval (proteins resampled together for both models). What a bundle decision reads:
validation only, the answers as `dbmtl predict` gives them (readouts and calibration included).

The validation split is the one the first model's training data settings give (its localization and
secondary-structure sources); the second model must give the same validation proteins. Per-residue
tasks: the mean over proteins of each protein's accuracy over its labelled residues (as `dbmtl evaluate`
reports Q3 / Q8; SS3 derived from 8-state labels where a protein has only those). Per-protein tasks: the
share of proteins right, with the proteins only one model gets right.

    python experiments/paired_validation.py A=MODEL_DIR B=MODEL_DIR [--data-dir DIR] [--threads N]
"""
from __future__ import annotations

import numpy as np

from dbmtl.data.catalog import load_training_data, resolve_data_dir
from dbmtl.data.onepass import label_indices
from dbmtl.evaluation.metrics import paired_difference
from dbmtl.inference.predictor import Predictor
from dbmtl.tasks import PROTEIN_TASKS, RESIDUE_TASKS, TASKS
from dbmtl.training.readout import residue_labels

from paired_localization import protein_hits, two_models

SETTINGS = ("localization_sources", "ss_sources")


def data_settings(predictor: Predictor) -> dict:
    """The training-data settings that decide a model's validation split."""
    train = predictor.meta.get("train") or {}
    return {k: train[k] for k in SETTINGS if k in train}


def residue_hits(predictor: Predictor, records: list) -> dict[str, np.ndarray]:
    """Per task: each protein's accuracy over its labelled resolved residues (NaN: none), against the
    labels the readout fit reads (training.readout.residue_labels)."""
    preds = predictor.predict([r.sequence for r in records], tasks=RESIDUE_TASKS)
    out = {t: np.full(len(records), np.nan) for t in RESIDUE_TASKS}
    for k, (p, r) in enumerate(zip(preds, records)):
        for t, gold in zip(("ss8", "ss3"), residue_labels(r)):
            known = gold >= 0
            if known.any():
                out[t][k] = (label_indices(p.labels[t], TASKS[t].labels).numpy() == gold)[known].mean()
    return out


def main() -> None:
    args, ((name_a, dir_a), (name_b, dir_b)) = two_models(__doc__)
    if name_a == name_b:
        raise SystemExit(f"give the two models different names (both are {name_a!r})")
    data_dir = resolve_data_dir(args.data_dir)
    predictors = {name_a: Predictor.from_pretrained(dir_a), name_b: Predictor.from_pretrained(dir_b)}
    settings = data_settings(predictors[name_a])
    valid = load_training_data(data_dir, **settings).split("valid")
    if data_settings(predictors[name_b]) != settings:  # the same settings give the same split: read it once
        other = load_training_data(data_dir, **data_settings(predictors[name_b])).split("valid")
        ids = [([r.sequence for r in s.residue], [r.sequence for r in s.protein]) for s in (valid, other)]
        if ids[0] != ids[1]:
            raise SystemExit(f"{name_a} and {name_b} were trained with different validation proteins: no paired comparison")
    hits = {name: {**residue_hits(p, valid.residue), **protein_hits(p, valid.protein)} for name, p in predictors.items()}
    print(f"| answer | proteins | {name_a} | {name_b} | {name_a} - {name_b} (paired 95% CI) | only {name_a} right | only {name_b} right |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for task in RESIDUE_TASKS + PROTEIN_TASKS:
        a, b = hits[name_a][task], hits[name_b][task]
        d = paired_difference(a, b)
        lo, hi = d["difference_ci"]
        only = ("", "") if task in RESIDUE_TASKS else (d["only_a"], d["only_b"])
        print(f"| {TASKS[task].metric} | {d['n_proteins']:,} | {100 * d['a']:.2f} | {100 * d['b']:.2f} | "
              f"{100 * d['difference']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] | {only[0]} | {only[1]} |")


if __name__ == "__main__":
    main()
