"""Would a per-protein head trained to convergence on the frozen backbone beat the model's own head?

Item 3 of issue 22 ("heads trained to convergence on cached backbone features"). One forward pass of a
onepass model over each localization protein of its training and validation split (the row predict reads:
`<LOC> <MS> residues`, cropped as predict crops) caches per-protein summaries of the final hidden states:
the <LOC> and <MS> states (what the model's own head reads), the mean and the maximum over residues, and
the means over the first and last `--termini` residues (sorting signals sit at the termini). Then, on
the training split only, it fits heads that see more of these summaries, with their regularisation chosen
by cross-validation on the training split; the validation split scores each once, beside the model's own
answer. The cost of the candidate (forward passes + fits, seconds of one thread) is printed beside it.

usage: python experiments/frozen_protein_head.py --model lineage/v5a [--threads 1] [--cache runs/frozen]
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dbmtl.evaluation.metrics import confusion_matrix, multiclass_mcc
from dbmtl.inference import Predictor
from dbmtl.model.readout import SUMMARIES
from dbmtl.tasks import TASKS
from dbmtl.training.readout import protein_features

from validation_setup import model_and_data, model_options

PARTS = SUMMARIES


def summaries(predictor: Predictor, sequences: list[str], termini: int) -> dict[str, np.ndarray]:
    """(n, n_embd) per summary in PARTS (dbmtl.model.readout.SUMMARIES, in its order), as the product's
    readout reads them."""
    feats, _ = protein_features(predictor, sequences, termini)
    return dict(zip(PARTS, np.split(feats.numpy(), len(PARTS), axis=1)))


def scores(pred: np.ndarray, y: np.ndarray) -> str:
    labels = TASKS["loc"].labels
    cm = confusion_matrix([labels[i] for i in pred], [labels[i] for i in y], labels)
    return f"accuracy {100 * (pred == y).mean():.1f}%, MCC {multiclass_mcc(cm):.3f}"


def main() -> None:
    ap = model_options(__doc__, "lineage/v5a", 1)
    ap.add_argument("--termini", type=int, default=40, help="residues averaged at each terminus")
    ap.add_argument("--cache", default="runs/frozen", help="folder for the cached summaries")
    ap.add_argument("--no-logistic", action="store_true", help="skip the (slower) logistic regressions")
    ap.add_argument("--limit", type=int, default=0, help="a random sample of this many training proteins (0: all)")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    predictor, data, _ = model_and_data(args)
    labels = TASKS["loc"].labels
    split = {s: [r for r in data.split(s).protein if r.location] for s in ("train", "valid")}
    if args.limit:
        keep = np.random.default_rng(0).permutation(len(split["train"]))[: args.limit]
        split["train"] = [split["train"][i] for i in sorted(keep)]
    cache = Path(args.cache) / f"{Path(args.model).name}_t{args.termini}_n{len(split['train'])}.npz"
    seconds = {}
    if cache.exists():
        stored = np.load(cache)
        feats = {s: {p: stored[f"{s}_{p}"] for p in PARTS} for s in split}
        seconds["forward"] = float(stored["seconds"])
    else:
        t0 = time.perf_counter()
        feats = {s: summaries(predictor, [r.sequence for r in rs], args.termini) for s, rs in split.items()}
        seconds["forward"] = time.perf_counter() - t0
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, seconds=seconds["forward"], **{f"{s}_{p}": v for s, f in feats.items() for p, v in f.items()})
    y = {s: np.array([labels.index(r.location) for r in rs]) for s, rs in split.items()}
    n_res = sum(min(len(r.sequence), predictor.layout.max_residue_length()) for rs in split.values() for r in rs)
    print(f"{args.model}: {len(y['train'])} training / {len(y['valid'])} validation proteins with one location; "
          f"forward passes {seconds['forward']:.0f} s on {args.threads} thread(s) ({n_res:,} residues)")

    own = np.stack(predictor.predict_proteins([r.sequence for r in split["valid"]], TASKS["loc"])).argmax(1)
    print(f"| head | features | validation | fit s |\n|---|---|---|---:|\n| the model's own | <LOC> state | {scores(own, y['valid'])} | |")
    candidates = {
        "logistic": ("loc_state",),
        "logistic ": ("loc_state", "ms_state", "mean", "max"),
        "logistic  ": PARTS,
    }
    for name, parts in (candidates.items() if not args.no_logistic else ()):
        x = {s: np.concatenate([feats[s][p] for p in parts], 1) for s in split}
        t0 = time.perf_counter()
        head = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=[0.001, 0.01, 0.1, 1.0], cv=3, max_iter=2000))
        head.fit(x["train"], y["train"])
        print(f"| {name.strip()} (C {head[-1].C_[0]:g}) | {' + '.join(parts)} | {scores(head.predict(x['valid']), y['valid'])} | "
              f"{time.perf_counter() - t0:.0f} |")
    x = {s: np.concatenate([feats[s][p] for p in PARTS], 1) for s in split}
    mlp_rows("location", x, y, own, MLPClassifier, make_pipeline, StandardScaler)

    # membrane-bound or soluble, on the same proteins where their label is known
    has = {s: np.array([r.membrane is not None for r in rs]) for s, rs in split.items()}
    ms_labels = TASKS["ms"].labels
    ms_y = {s: np.array([ms_labels.index(r.membrane) for r in rs if r.membrane]) for s, rs in split.items()}
    ms_x = {s: x[s][has[s]] for s in split}
    ms_own = np.stack(predictor.predict_proteins([r.sequence for r in split["valid"] if r.membrane], TASKS["ms"])).argmax(1)
    print(f"\n| membrane head | validation accuracy ({len(ms_y['valid'])} proteins) | fit s |\n|---|---|---:|\n"
          f"| the model's own | {100 * (ms_own == ms_y['valid']).mean():.1f}% | |")
    mlp_rows("membrane", ms_x, ms_y, ms_own, MLPClassifier, make_pipeline, StandardScaler)


def mlp_rows(name, x, y, own, MLPClassifier, make_pipeline, StandardScaler) -> None:
    """Three seeds of a one-hidden-layer MLP on every summary, each paired with the model's own answers,
    and their average (the recipe that does not depend on a lucky seed)."""
    probs = []
    for seed in range(3):
        t0 = time.perf_counter()
        mlp = make_pipeline(StandardScaler(), MLPClassifier((256,), alpha=1.0, early_stopping=True, max_iter=300,
                                                            random_state=seed))
        mlp.fit(x["train"], y["train"])
        probs.append(mlp.predict_proba(x["valid"]))
        pred = probs[-1].argmax(1)
        print(f"| {name}: MLP 256, alpha 1, seed {seed} | {' + '.join(PARTS)} | {summary(name, pred, y['valid'])} | "
              f"{time.perf_counter() - t0:.0f} |")
    pred = np.mean(probs, 0).argmax(1)
    print(f"| {name}: mean of the three seeds | {' + '.join(PARTS)} | {summary(name, pred, y['valid'])} | |")
    print(f"|   paired with the model's own | | {mcnemar(own == y['valid'], pred == y['valid'])} | |")


def summary(name: str, pred: np.ndarray, y: np.ndarray) -> str:
    return scores(pred, y) if name == "location" else f"accuracy {100 * (pred == y).mean():.1f}%"

def mcnemar(a: np.ndarray, b: np.ndarray) -> str:
    """Exact two-sided McNemar test of two sets of right/wrong answers on the same proteins."""
    from scipy.stats import binomtest
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_b, only_a + only_b).pvalue if only_a + only_b else 1.0
    return f"right only here {only_b}, only there {only_a}, p = {p:.2g}"

if __name__ == "__main__":
    main()
