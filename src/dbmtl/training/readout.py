"""Fit a onepass model's readouts (dbmtl.model.readout) on its frozen backbone.

Per-protein: one forward pass over the localization proteins of the model's own training data caches
their summaries (and the answers at <LOC> / <MS>, for comparison); then each task's networks train to
convergence on the training split's summaries in seconds: Adam, L2 on the weights, early stopping on a
tenth of the training split held out by each member's seed, the best epoch kept.

Per-residue: one forward pass over the secondary-structure proteins of its training data (those one row
holds, as training reads them) caches every residue's final state (float16) and the head's SS8 logits;
the convolutions then train on the training split (the model's own loss: SS8 cross-entropy where a
protein has 8-state labels, SS3 of the summed SS8 probabilities where it has 3-state ones; AdamW, stopped
when that loss on a tenth of the training proteins has not improved for `patience` epochs, the best
epoch kept), about 45-70 s an epoch on one thread.

The validation split scores each readout beside the head's answers; nothing else chooses anything. The
backbone is not changed.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.catalog import load_training_data
from ..data.onepass import PREFIX, label_indices
from ..model.heads import OnePassHeads
from ..model.readout import ProteinReadout, ResidueReadout, summaries
from ..tasks import SS3_LABELS, SS8_LABELS, TASKS, ss8_to_ss3

FIELDS = {"loc": "location", "ms": "membrane"}


@torch.inference_mode()
def protein_features(predictor, sequences: list[str], termini: int) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """(n, 6 * n_embd) summaries of each protein's one-pass row (cropped as predict crops), and the
    model's own location / membrane probabilities from the same pass."""
    layout, runner = predictor.layout, predictor.runner
    heads = OnePassHeads(predictor.alphabet, predictor.device)
    rows = [layout.prediction_row(layout.crop_protein(s)) for s in sequences]
    feats: list = [None] * len(rows)
    own = {t: [None] * len(rows) for t in FIELDS}
    for batch_ids, states, _ in runner.forward_batches(rows, states=True):
        lengths = [len(rows[i].inputs) - PREFIX for i in batch_ids]
        f = summaries(states, lengths, termini).cpu()
        probs = heads.probabilities(runner.model.head(states[:, :PREFIX]))  # <LOC> <MS> only
        for j, i in enumerate(batch_ids):
            feats[i] = f[j]
            for t in FIELDS:
                own[t][i] = probs[t][j].cpu().numpy()
    return torch.stack(feats), {t: np.stack(v) for t, v in own.items()}


class BestEpoch:
    """Early stopping: keeps the weights of the epoch with the best held-out score (higher is better;
    pass a loss negated) and says when `patience` epochs have passed without one better by `min_delta`."""

    def __init__(self, net: torch.nn.Module, patience: int, min_delta: float = 0.0):
        self.net, self.patience, self.min_delta = net, patience, min_delta
        self.score, self.epoch, self.state = float("-inf"), 0, None

    def stop(self, epoch: int, score: float) -> bool:
        """Record this epoch's held-out score; True when training should stop."""
        if score > self.score + self.min_delta:
            self.score, self.epoch = score, epoch
            self.state = {k: v.clone() for k, v in self.net.state_dict().items()}
            return False
        return epoch - self.epoch >= self.patience

    def restore(self) -> int:
        """Load the best epoch's weights into the network; returns that epoch."""
        self.net.load_state_dict(self.state)
        return self.epoch


def train_member(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, l2: float = 1.0,
                 batch: int = 200, max_epochs: int = 200, patience: int = 10) -> int:
    """Train one network in place on standardized x; returns the epoch kept (best held-out accuracy)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    stop, fit = order[: max(1, len(y) // 10)], order[max(1, len(y) // 10):]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    best = BestEpoch(net, patience, min_delta=1e-4)
    for epoch in range(1, max_epochs + 1):
        net.train()
        for idx in fit[torch.randperm(len(fit), generator=g)].split(batch):
            loss = F.cross_entropy(net(x[idx]), y[idx]) + 0.5 * l2 / len(fit) * sum((w * w).sum() for w in weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            accuracy = (net(x[stop]).argmax(1) == y[stop]).float().mean().item()
        if best.stop(epoch, accuracy):
            break
    return best.restore()


def fit_readout(predictor, data_dir: Path, hidden: int = 256, members: int = 3, termini: int = 40,
                limit: int | None = None, log: Callable[[str], None] = print) -> tuple[ProteinReadout, dict]:
    """A readout fitted on the model's own training split (its `localization_sources`) and its report:
    validation accuracy of the token answers and of the readout per task, proteins, seconds."""
    if predictor.kind != "onepass":
        raise ValueError(f"a per-protein readout needs a onepass model, not a {predictor.kind}")
    sources = (predictor.meta.get("train") or {}).get("localization_sources", "subsets")
    data = load_training_data(data_dir, localization_sources=sources)
    split = {s: [r for r in data.split(s).protein if r.location or r.membrane] for s in ("train", "valid")}
    if limit:
        keep = np.random.default_rng(0).permutation(len(split["train"]))[:limit]
        split["train"] = [split["train"][i] for i in sorted(keep)]
    t0 = time.perf_counter()
    log(f"reading {sum(map(len, split.values()))} proteins with the frozen backbone")
    feats, own = {}, {}
    for s, records in split.items():
        feats[s], own[s] = protein_features(predictor, [r.sequence for r in records], termini)
    forward_s = time.perf_counter() - t0
    torch.manual_seed(0)
    readout = ProteinReadout(predictor.model.cfg.n_embd, {t: len(TASKS[t].labels) for t in FIELDS},
                             hidden=hidden, members=members, termini=termini)
    readout.center.copy_(feats["train"].mean(0))
    readout.scale.copy_(feats["train"].std(0).clamp_min(1e-6))
    x = {s: (f - readout.center) / readout.scale for s, f in feats.items()}
    report = {"localization_sources": sources, "forward_s": round(forward_s, 1), "tasks": {}}
    t0 = time.perf_counter()
    for task, field in FIELDS.items():
        labels = TASKS[task].labels
        idx = {s: [i for i, r in enumerate(rs) if getattr(r, field)] for s, rs in split.items()}
        y = {s: torch.tensor([labels.index(getattr(split[s][i], field)) for i in idx[s]]) for s in split}
        epochs = [train_member(net, x["train"][idx["train"]], y["train"], seed=m)
                  for m, net in enumerate(readout.nets[task])]
        with torch.no_grad():
            fitted = readout(feats["valid"][idx["valid"]])[task].argmax(1)
        token = torch.from_numpy(own["valid"][task][idx["valid"]]).argmax(1)
        report["tasks"][task] = {
            "train_proteins": len(idx["train"]), "valid_proteins": len(idx["valid"]), "epochs": epochs,
            "valid_accuracy_token": round((token == y["valid"]).float().mean().item(), 4),
            "valid_accuracy_readout": round((fitted == y["valid"]).float().mean().item(), 4)}
        r = report["tasks"][task]
        log(f"{task}: validation accuracy {100 * r['valid_accuracy_token']:.1f}% at its token, "
            f"{100 * r['valid_accuracy_readout']:.1f}% from the readout ({r['valid_proteins']} proteins)")
    report["fit_s"] = round(time.perf_counter() - t0, 1)
    return readout.eval(), report


# -- per-residue ------------------------------------------------------------------------------------------


@torch.inference_mode()
def residue_features(predictor, sequences: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per protein (each fitting one row): (n, n_embd) float16 final states and (n, 8) float32 head SS8
    logits at its residues."""
    layout, runner = predictor.layout, predictor.runner
    heads = OnePassHeads(predictor.alphabet, predictor.device)
    rows = [layout.prediction_row(s) for s in sequences]
    out: list = [None] * len(rows)
    for batch_ids, states, _ in runner.forward_batches(rows, states=True):
        logits = runner.model.head(states)[..., heads.ss8].float()
        for j, i in enumerate(batch_ids):
            n = len(sequences[i])
            out[i] = (states[j, PREFIX : PREFIX + n].half().cpu().numpy(), logits[j, PREFIX : PREFIX + n].cpu().numpy())
    return out


def residue_labels(record) -> tuple[np.ndarray, np.ndarray]:
    """(n,) SS8 and SS3 label indices of a record, -1 where unknown or unresolved; SS3 from SS8 when it
    has only 8-state labels."""
    resolved = np.asarray(record.resolved, dtype=bool)
    ss3 = record.ss3 or (ss8_to_ss3(record.ss8) if record.ss8 else None)
    out = []
    for letters, names in ((record.ss8, SS8_LABELS), (ss3, SS3_LABELS)):
        y = np.full(len(record.sequence), -1, dtype=np.int64)
        if letters:
            y = label_indices(letters, names).numpy()
            y[~resolved] = -1
        out.append(y)
    return out[0], out[1]


def length_batches(lengths: list[int], tokens: int, rng: np.random.Generator | None = None) -> list[list[int]]:
    """Indices of proteins of similar length together (shortest first, each batch filled while its rows x
    longest row stay within `tokens`); the batch order shuffled when `rng` is given. The fit's batches,
    which the bundled readout was fitted with (data.batching.token_budget_batches groups longest first)."""
    out, cur = [], []
    for i in np.argsort(lengths, kind="stable"):
        if cur and (len(cur) + 1) * lengths[i] > tokens:
            out.append(cur)
            cur = []
        cur.append(int(i))
    if cur:
        out.append(cur)
    if rng is not None:
        rng.shuffle(out)
    return out


def _residue_batch(items: list, ids: list[int]):
    n = max(len(items[i][0]) for i in ids)
    width = items[ids[0]][0].shape[1]
    x, own = torch.zeros(len(ids), n, width), torch.zeros(len(ids), n, 8)
    y8, y3 = torch.full((len(ids), n), -1), torch.full((len(ids), n), -1)
    for j, i in enumerate(ids):
        states, logits, a, b = items[i]
        m = len(states)
        x[j, :m], own[j, :m] = torch.from_numpy(states).float(), torch.from_numpy(logits)
        y8[j, :m], y3[j, :m] = torch.from_numpy(a), torch.from_numpy(b)
    return x, own, [len(items[i][0]) for i in ids], y8, y3


def _residue_scores(ss8_logits: torch.Tensor, y8: torch.Tensor, y3: torch.Tensor, heads: OnePassHeads):
    """The model's per-residue loss (SS8 NLL + SS3 NLL of the summed probabilities, each a mean over its
    labels) and per task [correct, labels, summed NLL]."""
    ss8, ss3 = heads.ss8_ss3_of(ss8_logits)
    loss, counts = ss8_logits.sum() * 0.0, {}
    for name, logp, y in (("ss8", ss8, y8), ("ss3", ss3, y3)):
        known = y >= 0
        if bool(known.any()):
            picked = logp[known]
            nll = F.nll_loss(picked, y[known], reduction="sum")
            loss = loss + nll / int(known.sum())
            counts[name] = [int((picked.argmax(-1) == y[known]).sum()), int(known.sum()), float(nll.detach())]
    return loss, counts


def _residue_accuracy(readout: ResidueReadout | None, items: list, heads: OnePassHeads) -> dict[str, float]:
    """Q3 / Q8 of the readout (None: of the head's own logits) over cached proteins, and "loss": the
    mean SS3 + SS8 NLL per label (what the fit stops on)."""
    sums = {"ss8": [0, 0, 0.0], "ss3": [0, 0, 0.0]}
    with torch.no_grad():
        for ids in length_batches([len(it[0]) for it in items], 16384):
            x, own, lengths, y8, y3 = _residue_batch(items, ids)
            _, counts = _residue_scores(own if readout is None else readout(x, own, lengths), y8, y3, heads)
            for k, values in counts.items():
                sums[k] = [a + b for a, b in zip(sums[k], values)]
    out = {k: round(c / max(n, 1), 4) for k, (c, n, _) in sums.items()}
    out["loss"] = round(sum(nll / max(n, 1) for _, n, nll in sums.values()), 5)
    return out


# the per-residue fit's learning rate, a fraction of 1e-3, at a fraction of its steps
LR_SCHEDULES = {"constant": lambda done: 1.0, "cosine": lambda done: 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))}


def fit_residue_readout(predictor, data_dir: Path, hidden: int = 128, kernel: int = 9, max_epochs: int = 40,
                        patience: int = 5, schedule: str = "cosine", limit: int | None = None,
                        log: Callable[[str], None] = print) -> tuple[ResidueReadout, dict]:
    """A per-residue readout fitted on the model's own SS training split and its report: validation Q3 /
    Q8 of the head and of the readout, proteins, residues, epochs, seconds. `schedule`: the learning rate
    stays at 1e-3 ("constant") or falls to zero along a cosine over `max_epochs` ("cosine"), which lets
    the last epochs settle instead of wandering at the full rate."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
    if predictor.kind != "onepass":
        raise ValueError(f"a readout needs a onepass model, not a {predictor.kind}")
    train_cfg = predictor.meta.get("train") or {}
    sources = train_cfg.get("ss_sources", "flip+cullpdb")
    data = load_training_data(data_dir, localization_sources=train_cfg.get("localization_sources", "subsets"),
                              ss_sources=sources)
    longest = predictor.layout.max_residue_length()
    split = {s: [r for r in data.split(s).residue if len(r.sequence) <= longest] for s in ("train", "valid")}
    if limit:
        keep = np.random.default_rng(0).permutation(len(split["train"]))[:limit]
        split["train"] = [split["train"][i] for i in sorted(keep)]
    t0 = time.perf_counter()
    log(f"reading {sum(map(len, split.values()))} secondary-structure proteins with the frozen backbone")
    items = {s: [(*f, *residue_labels(r)) for f, r in zip(residue_features(predictor, [r.sequence for r in rs]), rs)]
             for s, rs in split.items()}
    forward_s = time.perf_counter() - t0
    heads = OnePassHeads(predictor.alphabet)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(items["train"]))
    stop = [items["train"][i] for i in order[: max(1, len(order) // 10)]]
    fit = [items["train"][i] for i in order[max(1, len(order) // 10):]]
    torch.manual_seed(0)
    readout = ResidueReadout(predictor.model.cfg.n_embd, hidden=hidden, kernel=kernel)
    sample = np.concatenate([fit[i][0] for i in rng.permutation(len(fit))[:2000]]).astype(np.float32)
    readout.center.copy_(torch.from_numpy(sample.mean(0)))
    readout.scale.copy_(torch.from_numpy(sample.std(0)).clamp_min(1e-6))
    opt = torch.optim.AdamW(readout.parameters(), lr=1e-3, weight_decay=1e-2)
    lengths_fit = [len(it[0]) for it in fit]
    steps = max_epochs * len(length_batches(lengths_fit, 8192))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: LR_SCHEDULES[schedule](step / steps))
    best = BestEpoch(readout, patience)
    t0 = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        readout.train()
        for ids in length_batches(lengths_fit, 8192, rng):
            x, own, lengths, y8, y3 = _residue_batch(fit, ids)
            loss, _ = _residue_scores(readout(x, own, lengths), y8, y3, heads)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        readout.eval()
        held = _residue_accuracy(readout, stop, heads)
        log(f"epoch {epoch}: held-out training proteins loss {held['loss']:.4f}, Q3 {100 * held['ss3']:.2f}, "
            f"Q8 {100 * held['ss8']:.2f}")
        if best.stop(epoch, -held["loss"]):
            break
    best_epoch = best.restore()
    readout.eval()
    head, fitted = _residue_accuracy(None, items["valid"], heads), _residue_accuracy(readout, items["valid"], heads)
    report = {"ss_sources": sources, "train_proteins": len(items["train"]), "valid_proteins": len(items["valid"]),
              "train_residues": int(sum(len(it[0]) for it in items["train"])), "epoch": best_epoch,
              "max_epochs": max_epochs, "schedule": schedule,
              "valid_head": head, "valid_readout": fitted, "forward_s": round(forward_s, 1),
              "fit_s": round(time.perf_counter() - t0, 1)}
    log(f"validation ({len(items['valid'])} proteins): Q3 {100 * head['ss3']:.2f} -> {100 * fitted['ss3']:.2f}, "
        f"Q8 {100 * head['ss8']:.2f} -> {100 * fitted['ss8']:.2f} (head -> readout)")
    return readout, report


def write_with_readouts(model_dir: Path, out: Path, readouts: dict[str, tuple[torch.nn.Module, dict]]) -> None:
    """A copy of the model folder with new readouts, {config key ("readout" / "residue_readout"):
    (readout, fit report)}; a readout the folder has and `readouts` lacks is kept. A new per-protein
    readout drops the calibration (fitted to other answers): run `dbmtl calibrate` on the new folder."""
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder for the model with its readout")
    staging = out.with_name(f".{out.name}.dbmtl-readout")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    meta = json.loads((staging / "config.json").read_text())
    if "readout" in readouts:
        meta.pop("calibration", None)
    for key, (readout, report) in readouts.items():
        meta[key] = readout.save(staging)
        meta[f"{key}_fit"] = report
    (staging / "config.json").write_text(json.dumps(meta, indent=1))
    staging.rename(out)
