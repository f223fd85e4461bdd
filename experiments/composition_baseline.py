"""The composition baseline (dbmtl.evaluation.baselines) on the DeepLoc test set, trained on each choice of
`localization_sources`: what amino-acid composition alone reaches with the data a model would see.

    python experiments/composition_baseline.py [--data-dir DIR] [subsets deeploc1 deeploc1+deeploc2]
"""
from __future__ import annotations

import argparse

from dbmtl.data.catalog import LOCALIZATION_SOURCES, protein_test_sets, resolve_data_dir
from dbmtl.evaluation.baselines import composition_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=list(LOCALIZATION_SOURCES), help="localization_sources values")
    parser.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    test = protein_test_sets(data_dir)["DeepLoc"]
    print("| trained on | location proteins | Q10 (95% CI) | ECE | membrane proteins | Q2 (95% CI) | ECE |")
    print("|---|---:|---|---:|---:|---|---:|")
    for sources in args.sources:
        base = composition_baseline(data_dir, test, sources)
        if "skipped" in base:
            raise SystemExit(base["skipped"])
        cells = []
        for task in ("loc", "ms"):
            s = base[task]
            lo, hi = s["accuracy_ci"]
            cells += [f"{s['n_train']:,}", f"{100 * s['accuracy']:.1f} ({100 * lo:.1f}-{100 * hi:.1f})", f"{s['ece']:.3f}"]
        print(f"| {sources} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
