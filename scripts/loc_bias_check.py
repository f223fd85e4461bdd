"""Would a per-class bias on the localization logits help? Validation data only.

Predicts the LOC validation proteins (the hold-out of the localization training material) with a model,
then 20 times: splits them in random halves, fits 10 additive biases on the log-probabilities of one half
(cross-entropy, L-BFGS) and scores accuracy on the other half with and without them (both directions).
A clear gain would mean the model ranks classes well but is mis-calibrated; none means it needs more
training signal instead.

usage: python scripts/loc_bias_check.py [--model default] [--threads 2]
"""
import argparse

import numpy as np
import torch

from dbmtl.data.catalog import load_training_data, resolve_data_dir
from dbmtl.inference import Predictor
from dbmtl.tasks import TASKS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data-dir")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = TASKS["loc"]
    records = [r for r in load_training_data(resolve_data_dir(args.data_dir)).split("valid").protein if r.location]
    probs = np.stack(Predictor.from_pretrained(args.model).predict_proteins([r.sequence for r in records], task))
    y = torch.tensor([list(task.labels).index(r.location) for r in records])
    logp = torch.tensor(np.log(probs + 1e-9), dtype=torch.float64)

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
    for _ in range(20):
        perm = torch.tensor(rng.permutation(len(y)))
        a, c = perm[: len(y) // 2], perm[len(y) // 2 :]
        for fit_on, score_on in ((a, c), (c, a)):
            b = fit_bias(fit_on)
            before = (logp[score_on].argmax(1) == y[score_on]).double().mean().item()
            after = ((logp[score_on] + b).argmax(1) == y[score_on]).double().mean().item()
            gains.append(after - before)
    print(f"{len(y)} validation proteins; accuracy without bias {(logp.argmax(1) == y).double().mean().item():.4f}")
    print(f"held-out accuracy change with a fitted per-class bias: {100 * np.mean(gains):+.2f} points "
          f"(sd {100 * np.std(gains):.2f}, {len(gains)} fits)")
    print("true class counts:", np.bincount(y.numpy(), minlength=len(task.labels)).tolist())
    print("predicted counts: ", np.bincount(probs.argmax(1), minlength=len(task.labels)).tolist())


if __name__ == "__main__":
    main()
