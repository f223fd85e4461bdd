"""How often two `dbmtl predict` output folders give the same labels (e.g. --dtype fp32 vs bf16).

    python experiments/compare_predictions.py out_fp32 out_bf16
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path


def rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def main(a: str, b: str) -> None:
    for name, columns in (("residues.tsv", ("ss3", "ss8")), ("proteins.tsv", ("location", "membrane"))):
        x, y = rows(Path(a) / name), rows(Path(b) / name)
        if len(x) != len(y):
            sys.exit(f"{name}: {len(x)} vs {len(y)} rows: not the same input")
        same = ", ".join(f"{c} {100 * sum(r[c] == s[c] for r, s in zip(x, y)) / len(x):.1f}%" for c in columns)
        print(f"{name}: {len(x):,} rows; same label: {same}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
