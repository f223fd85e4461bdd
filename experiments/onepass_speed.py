"""Prediction time of the four answers: a four-pass encoder vs a onepass model of the same size, side by
side in one run (random weights: speed does not depend on them), interleaved repeats, one thread.

    python experiments/onepass_speed.py [--proteins 100] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import torch

from dbmtl.data.catalog import resolve_data_dir
from dbmtl.inference import Predictor
from dbmtl.model import PRESETS, ModelConfig, Transformer
from dbmtl.readers.fasta import read_fasta
from dbmtl.tokens import Alphabet


def predictor(kind: str) -> Predictor:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(Alphabet()), **{**PRESETS["mini"], "kind": kind, "conv_kernel": 9},
                      protein_pooling="cls")
    return Predictor(Transformer(cfg).eval(), Alphabet())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proteins", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    query = resolve_data_dir() / "unlabeled/mmseqs2_examples/QUERY.fasta"
    records = [r for _, r in zip(range(args.proteins), read_fasta(query))]
    runs = {"encoder (four passes)": predictor("encoder"), "onepass (one pass)": predictor("onepass")}
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):
        for name, p in runs.items():
            start = time.perf_counter()
            p.predict(records)
            best[name] = min(best[name], time.perf_counter() - start)
    residues = sum(len(r.sequence) for r in records)
    print(f"{len(records)} QUERY.fasta proteins, {residues:,} residues, 1 thread, best of {args.repeats}:")
    for name, seconds in best.items():
        print(f"  {name}: {seconds:.2f} s")
    print(f"  ratio: {best['encoder (four passes)'] / best['onepass (one pass)']:.2f}x")


if __name__ == "__main__":
    main()
