"""Would re-weighting the localization classes after training help? Validation data only.

Predicts the LOC validation proteins (the hold-out of the localization data the model was trained on,
`localization_sources` in its config) with a model, then two checks:

1. A fitted bias: 20 times, splits the proteins in random halves, fits 10 additive biases on the
   log-probabilities of one half (cross-entropy, L-BFGS) and scores accuracy on the other half with and
   without them (both directions). A clear gain would mean the model ranks classes well but is
   mis-calibrated; none means it needs more training signal instead.
2. Prior correction (logit adjustment): divides the probabilities by the training prior to a power tau,
   which is what a class-weighted loss does to a calibrated model. Accuracy, Gorodkin's MCC and the mean
   per-class recall for each tau: whether the rare classes (Golgi, Lysosome, Peroxisome) can be bought
   and at what cost.

usage: python experiments/loc_bias_check.py [--model default] [--threads 2]
"""
from collections import Counter

import numpy as np
import torch

from dbmtl.evaluation.metrics import confusion_matrix, multiclass_mcc
from dbmtl.tasks import TASKS

from validation_setup import model_and_data, model_options

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)


def fitted_bias_gains(logp: torch.Tensor, y: torch.Tensor, repeats: int = 20) -> list[float]:
    """Held-out accuracy change of a per-class bias fitted on the other half, per fit."""
    def fit_bias(idx: torch.Tensor) -> torch.Tensor:
        b = torch.zeros(logp.shape[1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([b], max_iter=200)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logp[idx] + b, y[idx])
            loss.backward()
            return loss

        opt.step(closure)
        return b.detach()

    rng = np.random.default_rng(0)
    gains = []
    for _ in range(repeats):
        perm = torch.tensor(rng.permutation(len(y)))
        a, c = perm[: len(y) // 2], perm[len(y) // 2:]
        for fit_on, score_on in ((a, c), (c, a)):
            b = fit_bias(fit_on)
            before = (logp[score_on].argmax(1) == y[score_on]).double().mean().item()
            after = ((logp[score_on] + b).argmax(1) == y[score_on]).double().mean().item()
            gains.append(after - before)
    return gains


def prior_correction(probs: np.ndarray, y: np.ndarray, prior: np.ndarray, tau: float) -> dict:
    pred = (np.log(probs + 1e-12) - tau * np.log(prior)).argmax(1)
    labels = TASKS["loc"].labels
    cm = confusion_matrix([labels[i] for i in pred], [labels[i] for i in y], labels)
    recall = np.diag(cm) / np.maximum(cm.sum(1), 1)
    return {"accuracy": float((pred == y).mean()), "mcc": multiclass_mcc(cm), "mean_recall": float(recall.mean()),
            "predicted": np.bincount(pred, minlength=len(labels)).tolist()}


def main() -> None:
    args = model_options(__doc__, "default", 2).parse_args()
    predictor, data, sources = model_and_data(args)
    task = TASKS["loc"]
    records = [r for r in data.split("valid").protein if r.location]
    counts = Counter(r.location for r in data.split("train").protein if r.location)
    prior = np.array([counts[c] for c in task.labels], dtype=float)
    prior /= prior.sum()
    probs = np.stack(predictor.predict_proteins([r.sequence for r in records], task))
    y = np.array([task.labels.index(r.location) for r in records])
    logp = torch.tensor(np.log(probs + 1e-9), dtype=torch.float64)

    gains = fitted_bias_gains(logp, torch.tensor(y))
    print(f"{args.model}: localization_sources {sources}; {len(y)} validation proteins; "
          f"accuracy {(probs.argmax(1) == y).mean():.4f}")
    print(f"held-out accuracy change with a fitted per-class bias: {100 * np.mean(gains):+.2f} points "
          f"(sd {100 * np.std(gains):.2f}, {len(gains)} fits)")
    print("classes:         ", ", ".join(task.labels))
    print("true counts:     ", np.bincount(y, minlength=len(task.labels)).tolist())
    print("training prior:  ", np.round(prior, 3).tolist())
    print("\n| tau | accuracy | MCC | mean per-class recall | predicted counts |\n|---:|---:|---:|---:|---|")
    for tau in TAUS:
        s = prior_correction(probs, y, prior, tau)
        print(f"| {tau:.2f} | {100 * s['accuracy']:.1f} | {s['mcc']:.3f} | {100 * s['mean_recall']:.1f} | "
              f"{' '.join(map(str, s['predicted']))} |")


if __name__ == "__main__":
    main()
