"""Would Light Attention on the frozen backbone's per-residue states beat the per-protein readout?

Item 3 of issue 22 ("heads trained to convergence on cached backbone features (Light Attention's recipe:
a convolution and attention pooling over frozen per-residue features)"). The product's per-protein
readout (`dbmtl fit-readout`) sees six fixed summaries of the final states; Light Attention (Staerk et
al. 2021) learns its own pooling: two 1-D convolutions over the residues' states, one giving values, one
giving per-channel attention scores; the softmax-weighted sum and the maximum of the values over the
residues feed a small network.

One forward pass of a onepass model over each single-location protein of its training and validation
split (the row predict reads, cropped as predict crops) caches every position's final state (float16)
under `--cache` (and each fitted head's validation answers, so a rerun only prints). On the training split only (early stopping on a tenth of it, by held-out accuracy), it
fits: the product's readout networks on the six summaries of the same states (the reference, three
seeds averaged as the product does), and Light Attention heads (one per seed), with and without the six
summaries joined to their pooled vector. The validation split scores each once. Seconds of one thread
are printed beside each.

usage: python experiments/light_attention_readout.py --model lineage/v5d [--threads 1] [--cache runs/la_cache]
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dbmtl.data.onepass import PREFIX
from dbmtl.model.readout import ProteinReadout, summaries
from dbmtl.tasks import TASKS
from dbmtl.training.readout import BestEpoch, length_batches, train_member

from validation_setup import model_and_data, model_options

LABELS = TASKS["loc"].labels


@torch.inference_mode()
def cached_states(predictor, sequences: list[str]) -> list[np.ndarray]:
    """Per protein: (PREFIX + residues, n_embd) float16 final states of its one-pass row."""
    layout, runner = predictor.layout, predictor.runner
    rows = [layout.prediction_row(layout.crop_protein(s)) for s in sequences]
    out: list = [None] * len(rows)
    for batch_ids, states, _ in runner.forward_batches(rows, states=True):
        for j, i in enumerate(batch_ids):
            out[i] = states[j, : len(rows[i].inputs)].half().cpu().numpy()
    return out


class LightAttention(nn.Module):
    """Values and per-channel attention scores from two convolutions over the residues' states; the
    attention-weighted sum and the maximum of the values (and optionally the standardized summaries)
    feed one hidden layer."""

    def __init__(self, n_embd: int, n_classes: int, hidden: int, kernel: int, extra: int = 0, dropout: float = 0.25):
        super().__init__()
        self.values = nn.Conv1d(n_embd, hidden, kernel, padding=kernel // 2)
        self.scores = nn.Conv1d(n_embd, hidden, kernel, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Sequential(nn.Linear(2 * hidden + extra, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = (x * mask[..., None]).transpose(1, 2)  # (B, C, T), padding zeroed before the convolutions
        v = self.dropout(self.values(x))
        s = self.scores(x).masked_fill(~mask[:, None], float("-inf"))
        pooled = [(v * s.softmax(-1)).sum(-1), v.masked_fill(~mask[:, None], float("-inf")).amax(-1)]
        if extra is not None:
            pooled.append(extra)
        return self.out(torch.cat(pooled, 1))


def batch(states: list[np.ndarray], ids: list[int], center: torch.Tensor, scale: torch.Tensor):
    n = max(len(states[i]) - PREFIX for i in ids)
    x = torch.zeros(len(ids), n, center.numel())
    mask = torch.zeros(len(ids), n, dtype=torch.bool)
    for j, i in enumerate(ids):
        res = torch.from_numpy(states[i][PREFIX:]).float()
        x[j, : len(res)] = (res - center) / scale
        mask[j, : len(res)] = True
    return x, mask


def fit_light_attention(states, y, extra, seed: int, hidden: int, kernel: int, center, scale,
                        max_epochs: int = 30, patience: int = 4, tokens: int = 8192, log=print):
    """One head trained on `states` (training split) with early stopping on a tenth of it (held-out
    accuracy); the best epoch kept."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    stop, fit = order[: len(y) // 10], order[len(y) // 10:]
    net = LightAttention(center.numel(), len(LABELS), hidden, kernel, 0 if extra is None else extra.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    best = BestEpoch(net, patience, min_delta=1e-4)
    for epoch in range(1, max_epochs + 1):
        t0 = time.perf_counter()
        net.train()
        for ids in length_batches([len(states[i]) for i in fit], tokens, rng):
            ids = [int(fit[k]) for k in ids]
            x, mask = batch(states, ids, center, scale)
            loss = F.cross_entropy(net(x, mask, None if extra is None else extra[ids]), y[ids])
            opt.zero_grad()
            loss.backward()
            opt.step()
        accuracy = (predict(net, states, stop, extra, center, scale).argmax(1) == y[stop]).float().mean().item()
        log(f"  seed {seed} epoch {epoch}: held-out accuracy {100 * accuracy:.1f}% ({time.perf_counter() - t0:.0f} s)")
        if best.stop(epoch, accuracy):
            break
    epoch = best.restore()
    return net.eval(), epoch


@torch.no_grad()
def predict(net, states, ids, extra, center, scale, tokens: int = 16384) -> torch.Tensor:
    """(len(ids), classes) probabilities, in the order of `ids`."""
    net.eval()
    ids = [int(i) for i in ids]
    out = torch.zeros(len(ids), len(LABELS))
    for group in length_batches([len(states[i]) for i in ids], tokens):
        sel = [ids[k] for k in group]
        x, mask = batch(states, sel, center, scale)
        out[group] = net(x, mask, None if extra is None else extra[sel]).softmax(1)
    return out


def main() -> None:
    ap = model_options(__doc__, "lineage/v5d", 1)
    ap.add_argument("--cache", default="runs/la_cache", help="folder for the cached per-residue states")
    ap.add_argument("--hidden", type=int, default=128, help="channels of each convolution")
    ap.add_argument("--kernel", type=int, default=9, help="convolution width")
    ap.add_argument("--seeds", type=int, default=3, help="Light Attention heads per variant (averaged)")
    ap.add_argument("--variants", default="plain,summaries", help="which heads: plain, summaries (comma-separated)")
    ap.add_argument("--limit", type=int, default=0, help="a random sample of this many training proteins (0: all)")
    args = ap.parse_args()
    predictor, data, _ = model_and_data(args)
    split = {s: [r for r in data.split(s).protein if r.location] for s in ("train", "valid")}
    if args.limit:
        keep = np.random.default_rng(0).permutation(len(split["train"]))[: args.limit]
        split["train"] = [split["train"][i] for i in sorted(keep)]
    cache = Path(args.cache)
    states, t0 = {}, time.perf_counter()
    for s, records in split.items():
        path = cache / (f"train{args.limit}.pt" if s == "train" and args.limit else f"{s}.pt")
        if path.exists():
            states[s] = torch.load(path, weights_only=False)
        else:
            states[s] = cached_states(predictor, [r.sequence for r in records])
            cache.mkdir(parents=True, exist_ok=True)
            torch.save(states[s], path)
    print(f"states of {sum(map(len, split.values()))} proteins: {time.perf_counter() - t0:.0f} s", flush=True)
    y = {s: torch.tensor([LABELS.index(r.location) for r in rs]) for s, rs in split.items()}
    torch.set_num_threads(args.threads)
    # the softmax over hundreds of residues underflows into denormal floats as the attention sharpens,
    # and CPU arithmetic on denormals is many times slower: flush them to zero
    torch.set_flush_denormal(True)

    # the reference: the product's readout networks on the six summaries of the same states
    t0 = time.perf_counter()
    feats = {s: torch.cat([summaries(torch.from_numpy(a)[None], [len(a) - PREFIX], 40) for a in st])
             for s, st in states.items()}
    torch.manual_seed(0)
    readout = ProteinReadout(predictor.model.cfg.n_embd, {"loc": len(LABELS)})
    center, scale = feats["train"].mean(0), feats["train"].std(0).clamp_min(1e-6)
    z = {s: (f - center) / scale for s, f in feats.items()}
    for m, net in enumerate(readout.nets["loc"]):
        train_member(net, z["train"], y["train"], seed=m)
    with torch.no_grad():
        ref = torch.stack([net(z["valid"]).softmax(1) for net in readout.nets["loc"]]).mean(0)
    results = {"readout (six summaries, 3 seeds)": (ref, time.perf_counter() - t0)}
    print(f"readout: validation accuracy {100 * (ref.argmax(1) == y['valid']).float().mean():.1f}% "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    sample = np.concatenate([a[PREFIX:] for a in states["train"][:2000]]).astype(np.float32)
    rc, rs = torch.from_numpy(sample.mean(0)), torch.from_numpy(sample.std(0)).clamp_min(1e-6)
    for variant in args.variants.split(","):
        extra = z if variant == "summaries" else {"train": None, "valid": None}
        t0, probs = time.perf_counter(), []
        for seed in range(args.seeds):
            # each head's validation answers are kept, so a rerun prints the table without refitting
            saved = cache / f"valid_probs_{variant}_k{args.kernel}_h{args.hidden}_seed{seed}{args.limit or ''}.pt"
            if saved.exists():
                p, epoch = torch.load(saved)
            else:
                net, epoch = fit_light_attention(states["train"], y["train"], extra["train"], seed, args.hidden,
                                                 args.kernel, rc, rs)
                p = predict(net, states["valid"], range(len(y["valid"])), extra["valid"], rc, rs)
                torch.save((p, epoch), saved)
            probs.append(p)
            print(f"light attention ({variant}), seed {seed}: epoch {epoch}, validation accuracy "
                  f"{100 * (p.argmax(1) == y['valid']).float().mean():.1f}%", flush=True)
        results[f"light attention {variant} (k {args.kernel}, {args.hidden} ch, {args.seeds} seeds)"] = (
            torch.stack(probs).mean(0), time.perf_counter() - t0)
    results["readout + light attention (mean of the above)"] = (
        torch.stack([p for p, _ in results.values()]).mean(0), 0.0)
    print(f"\nvalidation: {len(y['valid'])} proteins with one location; training {len(y['train'])}")
    for name, (p, seconds) in results.items():
        pred = p.argmax(1)
        right = (pred == y["valid"]).float()
        print(f"| {name} | {100 * right.mean():.1f} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
