"""The two ways to make a residue's SS3 and SS8 letters agree, on the per-residue test sets: how often the
shipped rule (SS3 first, SS8 the likeliest letter inside its class) changes the SS8 letter, and the Q3 of
the other rule (SS3 = the class of the SS8 argmax). docs/results.md section 12.

    python scripts/letter_rules.py [--model DIR] [--threads N]
"""
from __future__ import annotations

import argparse

import torch

from dbmtl import Predictor
from dbmtl.data.catalog import residue_test_sets, resolve_data_dir
from dbmtl.evaluation.metrics import per_residue_accuracy
from dbmtl.inference.decoding import label_string
from dbmtl.tasks import SS8_LABELS, ss8_to_ss3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(args.model)
    for name, records in residue_test_sets(resolve_data_dir()).items():
        preds = predictor.predict([r.sequence for r in records], tasks=["ss3", "ss8"])
        argmax = [label_string(SS8_LABELS, p.probabilities["ss8"].argmax(1)) for p in preds]
        changed = sum(a != b for p, s in zip(preds, argmax) for a, b in zip(p.ss8, s))
        total = sum(map(len, argmax))
        masks, gold = [r.resolved for r in records], [r.ss3 for r in records]
        shipped = per_residue_accuracy([p.ss3 for p in preds], gold, masks)
        other = per_residue_accuracy([ss8_to_ss3(s) for s in argmax], gold, masks)
        print(f"{name}: SS8 letter changed on {changed}/{total} residues ({100 * changed / total:.1f}%); "
              f"Q3 mean/pooled shipped {100 * shipped['mean']:.1f}/{100 * shipped['pooled']:.1f}, "
              f"SS3 = class of SS8 argmax {100 * other['mean']:.1f}/{100 * other['pooled']:.1f}")


if __name__ == "__main__":
    main()
