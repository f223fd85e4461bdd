"""Does the readout slow prediction? The same loaded model answers the same proteins with and without its
readout, alternating, in one process (so machine load hits both alike); prints seconds per round.

usage: python experiments/readout_speed.py [--model default] [--proteins 150] [--rounds 3] [--threads 1]
"""
import argparse
import time

import torch

from dbmtl.inference import Predictor
from dbmtl.readers.fasta import read_fasta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="default", help="model folder with a readout")
    ap.add_argument("--fasta", default="../shared/data/unlabeled/mmseqs2_examples/QUERY.fasta", help="proteins")
    ap.add_argument("--proteins", type=int, default=150, help="first N proteins of the file")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sequences = [r.sequence for r in read_fasta(args.fasta)][: args.proteins]
    predictor = Predictor.from_pretrained(args.model)
    readout = predictor.readout
    if readout is None:
        raise SystemExit(f"{args.model} has no readout")
    totals = {"tokens": 0.0, "readout": 0.0}
    for k in range(args.rounds):
        for name, value in (("tokens", None), ("readout", readout)):
            predictor.readout = value
            t0 = time.perf_counter()
            predictor.one_pass(sequences)
            totals[name] += time.perf_counter() - t0
            print(f"round {k + 1}: {name:8s} {time.perf_counter() - t0:.2f} s")
    print(f"{len(sequences)} proteins x {args.rounds} rounds: tokens {totals['tokens']:.1f} s, readout "
          f"{totals['readout']:.1f} s, ratio {totals['readout'] / totals['tokens']:.3f}")


if __name__ == "__main__":
    main()
