"""Do the readouts slow prediction? The same loaded model answers the same proteins with and without its
readouts, alternating, in one process (so machine load hits both alike); prints seconds per round.

--residue-hidden N times a per-residue readout of that width (unfitted: the time does not depend on the
weights) when the model has none, to see a width's cost before fitting it.

usage: python experiments/readout_speed.py [--model default] [--proteins 150] [--rounds 3] [--threads 1]
                                           [--residue-hidden N]
"""
import argparse
import time

import torch

from dbmtl.inference import Predictor
from dbmtl.model.readout import ResidueReadout
from dbmtl.readers.fasta import read_fasta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="default", help="model folder with a readout")
    ap.add_argument("--fasta", default="../shared/data/unlabeled/mmseqs2_examples/QUERY.fasta", help="proteins")
    ap.add_argument("--proteins", type=int, default=150, help="first N proteins of the file")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--residue-hidden", type=int, help="time an unfitted per-residue readout of this width")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sequences = [r.sequence for r in read_fasta(args.fasta)][: args.proteins]
    predictor = Predictor.from_pretrained(args.model)
    if args.residue_hidden:
        predictor.residue_readout = ResidueReadout(predictor.model.cfg.n_embd, hidden=args.residue_hidden).eval()
    readouts = (predictor.readout, predictor.residue_readout)
    if readouts == (None, None):
        raise SystemExit(f"{args.model} has no readout")
    totals = {"head": 0.0, "readouts": 0.0}
    for k in range(args.rounds):
        for name, (protein, residue) in (("head", (None, None)), ("readouts", readouts)):
            predictor.readout, predictor.residue_readout = protein, residue
            t0 = time.perf_counter()
            predictor.one_pass(sequences)
            totals[name] += time.perf_counter() - t0
            print(f"round {k + 1}: {name:8s} {time.perf_counter() - t0:.2f} s")
    print(f"{len(sequences)} proteins x {args.rounds} rounds: head {totals['head']:.1f} s, readouts "
          f"{totals['readouts']:.1f} s, ratio {totals['readouts'] / totals['head']:.3f}")


if __name__ == "__main__":
    main()
