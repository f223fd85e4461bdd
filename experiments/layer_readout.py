"""Do the backbone's intermediate layers hold what its final states lack, for the readouts?

Item 3 of issue 22 (heads trained to convergence on cached backbone features). The product's readouts
(`dbmtl fit-readout`) read only the final states, after the last layer norm, which the output head also
reads; in a small multi-task model those states are shaped for the head's own answers. Here the same
recipes read, in addition, the residual stream after earlier blocks (before any layer norm; every input
is standardized on the training split as the product does).

`--part protein`: one forward pass over the localization proteins of the model's training and
validation split (as `fit-readout` reads them, cropped as predict crops) caches the product's six
summaries of the final states and, per earlier block, the mean, maximum and the two termini means over
residues (`--cache`, so a rerun only fits). On the training split only, the product's networks
(`train_member`: three seeds, answers averaged) are fitted on: the six summaries (the product's
readout), the same with nine seeds, the six summaries + every earlier block's residue mean, and + all
four of each earlier block's summaries. The validation split scores each once, paired with the first.

`--part residue --block K`: the product's per-residue fit (`fit_residue_readout`, unchanged recipe),
its readout reading each residue's final state joined with the residual stream after block K (1-based),
so its first convolution is twice as wide (the script swaps the fit module's feature reader and readout
class for the joined ones, so every other line of the fit is the product's).

`--part probe`: a linear SS8 probe per block (400 training proteins, 200 validation proteins with
8-state labels), to choose K.

usage: python experiments/layer_readout.py --part probe --model default --threads 1
       python experiments/layer_readout.py --part protein --model default --threads 1
       python experiments/layer_readout.py --part residue --block 3 --model default --threads 1
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import dbmtl.training.readout as fitting
from dbmtl.data.catalog import resolve_data_dir
from dbmtl.data.onepass import PREFIX
from dbmtl.inference import Predictor
from dbmtl.model.readout import SUMMARIES, ResidueReadout, summaries
from dbmtl.tasks import TASKS
from dbmtl.training.readout import FIELDS, train_member

from validation_setup import model_and_data, model_options


class BlockOutputs:
    """Forward hooks keeping the residual stream after each block of the last forward pass (removed on
    leaving a `with` block)."""

    def __init__(self, model):
        self.outputs: list[torch.Tensor | None] = [None] * len(model.blocks)
        self.handles = [block.register_forward_hook(self._keeper(k)) for k, block in enumerate(model.blocks)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()

    def _keeper(self, k):
        def keep(module, args, output):
            self.outputs[k] = output
        return keep


@torch.inference_mode()
def protein_layer_features(predictor, sequences: list[str], termini: int = 40) -> dict[str, np.ndarray]:
    """{"final": (n, 6 * n_embd) product summaries, "block{k}": (n, 4 * n_embd) per earlier block (the
    product's summaries over residues: all but those of the <LOC> and <MS> columns)."""
    layout, runner = predictor.layout, predictor.runner
    rows = [layout.prediction_row(layout.crop_protein(s)) for s in sequences]
    n_blocks = len(runner.model.blocks)
    feats = {name: [None] * len(rows) for name in ["final", *(f"block{k}" for k in range(1, n_blocks))]}
    with BlockOutputs(runner.model) as hooks:
        for batch_ids, states, _ in runner.forward_batches(rows, states=True):
            lengths = [len(rows[i].inputs) - PREFIX for i in batch_ids]
            n_embd = states.shape[-1]
            got = {"final": summaries(states, lengths, termini)}
            for k in range(1, n_blocks):
                got[f"block{k}"] = summaries(hooks.outputs[k - 1], lengths, termini)[:, PREFIX * n_embd :]
            for name, f in got.items():
                for j, i in enumerate(batch_ids):
                    feats[name][i] = f[j].numpy()
    return {name: np.stack(v) for name, v in feats.items()}


def fit_and_score(x_train, y_train, x_valid, seeds: int) -> np.ndarray:
    """Mean validation probabilities of `seeds` product networks fitted on standardized inputs."""
    center, scale = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
    n_classes = int(y_train.max()) + 1
    probs = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x_train.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, n_classes))
        train_member(net, (x_train - center) / scale, y_train, seed=seed)
        with torch.no_grad():
            probs.append(torch.softmax(net((x_valid - center) / scale), -1))
    return torch.stack(probs).mean(0).numpy()


def run_protein(args, predictor, data) -> None:
    split = {s: [r for r in data.split(s).protein if r.location or r.membrane] for s in ("train", "valid")}
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    feats = {}
    for s, records in split.items():
        path = cache / f"{s}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            np.savez(path, **protein_layer_features(predictor, [r.sequence for r in records]))
            print(f"{s}: {len(records)} proteins read in {time.perf_counter() - t0:.0f} s", flush=True)
        feats[s] = {k: torch.from_numpy(v) for k, v in np.load(path).items()}
    blocks = sorted((k for k in feats["train"] if k.startswith("block")), key=lambda k: int(k[5:]))
    n_embd = feats["train"]["final"].shape[1] // len(SUMMARIES)
    variants = {
        "final, 3 seeds (the product's readout)": (lambda f: f["final"], 3),
        "final, 9 seeds": (lambda f: f["final"], 9),
        "final + earlier blocks' means": (lambda f: torch.cat([f["final"], *(f[b][:, :n_embd] for b in blocks)], 1), 3),
        "final + earlier blocks' four summaries": (lambda f: torch.cat([f["final"], *(f[b] for b in blocks)], 1), 3),
    }
    for task, field in FIELDS.items():
        labels = TASKS[task].labels
        idx = {s: [i for i, r in enumerate(rs) if getattr(r, field)] for s, rs in split.items()}
        y = {s: np.array([labels.index(getattr(split[s][i], field)) for i in idx[s]]) for s in split}
        reference = None
        for name, (pick, seeds) in variants.items():
            t0 = time.perf_counter()
            x = {s: pick(feats[s])[idx[s]].float() for s in split}
            right = fit_and_score(x["train"], torch.from_numpy(y["train"]), x["valid"], seeds).argmax(1) == y["valid"]
            line = f"{task} | {name} | inputs {x['train'].shape[1]} | validation accuracy {100 * right.mean():.2f}% ({len(right)} proteins)"
            if reference is None:
                reference = right
            else:
                only_new, only_ref = int((right & ~reference).sum()), int((reference & ~right).sum())
                line += f" | right only here {only_new}, only with the product's {only_ref}"
            print(f"{line} | fit {time.perf_counter() - t0:.0f} s", flush=True)


def run_residue(args, predictor, data_dir: Path) -> None:
    """The product's per-residue fit with each residue's state joined to block `args.block`'s output."""
    runner = predictor.runner
    hooks = BlockOutputs(runner.model)  # kept for the whole run: the fit's forward passes read them
    n_embd = predictor.model.cfg.n_embd
    k = args.block

    @torch.inference_mode()
    def joined_features(predictor, sequences):
        heads = fitting.OnePassHeads(predictor.alphabet, predictor.device)
        rows = [predictor.layout.prediction_row(s) for s in sequences]
        out: list = [None] * len(rows)
        for batch_ids, states, _ in runner.forward_batches(rows, states=True):
            logits = runner.model.head(states)[..., heads.ss8].float()
            joined = torch.cat([states, hooks.outputs[k - 1]], -1)
            for j, i in enumerate(batch_ids):
                n = len(sequences[i])
                out[i] = (joined[j, PREFIX : PREFIX + n].half().cpu().numpy(), logits[j, PREFIX : PREFIX + n].cpu().numpy())
        return out

    fitting.residue_features = joined_features
    fitting.ResidueReadout = lambda width, **kw: ResidueReadout(2 * n_embd, **kw)
    readout, report = fitting.fit_residue_readout(predictor, data_dir, limit=args.limit,
                                                  log=lambda m: print(m, flush=True))
    print(report, flush=True)


def run_probe(args, predictor, data_dir: Path) -> None:
    """Which block to join: a linear SS8 probe (logistic regression on single residues) per block's output
    and on the final states, fitted on `--limit` training proteins, scored on validation proteins."""
    from sklearn.linear_model import LogisticRegression
    from dbmtl.data.catalog import load_training_data
    train_cfg = predictor.meta.get("train") or {}
    data = load_training_data(data_dir, localization_sources=train_cfg.get("localization_sources", "subsets"),
                              ss_sources=train_cfg.get("ss_sources", "flip+cullpdb"))
    longest = predictor.layout.max_residue_length()
    rng = np.random.default_rng(0)
    picked = {}
    for s, n in (("train", args.limit or 400), ("valid", 200)):
        rs = [r for r in data.split(s).residue if len(r.sequence) <= longest and r.ss8]
        picked[s] = [rs[i] for i in sorted(rng.permutation(len(rs))[:n])]
    runner = predictor.runner
    per = {}
    with BlockOutputs(runner.model) as hooks, torch.inference_mode():
        for s, rs in picked.items():
            rows = [predictor.layout.prediction_row(r.sequence) for r in rs]
            xs, ys = {}, []
            for batch_ids, states, _ in runner.forward_batches(rows, states=True):
                named = {"final": states, **{f"block{k + 1}": o for k, o in enumerate(hooks.outputs)}}
                for j, i in enumerate(batch_ids):
                    y8, _ = fitting.residue_labels(rs[i])
                    keep = y8 >= 0
                    n = len(rs[i].sequence)
                    ys.append(y8[keep])
                    for name, t in named.items():
                        xs.setdefault(name, []).append(t[j, PREFIX : PREFIX + n].float().numpy()[keep])
            per[s] = ({k: np.concatenate(v) for k, v in xs.items()}, np.concatenate(ys))
    for name in per["train"][0]:
        x, y = per["train"][0][name], per["train"][1]
        center, scale = x.mean(0), x.std(0) + 1e-6
        clf = LogisticRegression(max_iter=300).fit((x - center) / scale, y)
        acc = clf.score((per["valid"][0][name] - center) / scale, per["valid"][1])
        print(f"{name}: linear SS8 probe, validation Q8 {100 * acc:.2f} ({len(per['valid'][1])} residues)", flush=True)


def main() -> None:
    ap = model_options(__doc__, "default", 1)
    ap.add_argument("--part", choices=("protein", "residue", "probe"), required=True)
    ap.add_argument("--block", type=int, default=3, help="residue part: the block (1-based) whose output joins the final states")
    ap.add_argument("--cache", default="runs/layer_readout_cache", help="protein part: cached summaries")
    ap.add_argument("--limit", type=int, help="residue part: fit on this many training proteins (a quick check); probe: its training proteins (400 when not given)")
    args = ap.parse_args()
    if args.part == "protein":
        predictor, data, _ = model_and_data(args)
        run_protein(args, predictor, data)
        return
    # the residue parts read the secondary-structure data their own way: no localization data loaded
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(args.model)
    (run_probe if args.part == "probe" else run_residue)(args, predictor, resolve_data_dir(args.data_dir))


if __name__ == "__main__":
    main()
