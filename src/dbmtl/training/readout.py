"""Fit a onepass model's per-protein readout (dbmtl.model.readout) on its frozen backbone.

One forward pass over the localization proteins of the model's own training data caches their summaries
(and the answers at <LOC> / <MS>, for comparison); then each task's networks train to convergence on the
training split's summaries in seconds: Adam, L2 on the weights, early stopping on a tenth of the training
split held out by each member's seed, the best epoch kept. The validation split scores the readout beside
the token answers; nothing else chooses anything. The backbone is not changed.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.catalog import load_training_data
from ..data.onepass import PREFIX
from ..model.heads import OnePassHeads
from ..model.readout import ProteinReadout, summaries
from ..tasks import TASKS

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


def train_member(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, l2: float = 1.0,
                 batch: int = 200, max_epochs: int = 200, patience: int = 10) -> int:
    """Train one network in place on standardized x; returns the epoch kept (best held-out accuracy)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    stop, fit = order[: max(1, len(y) // 10)], order[max(1, len(y) // 10):]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    best, best_state, best_epoch = -1.0, None, 0
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
        if accuracy > best + 1e-4:
            best, best_epoch = accuracy, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    net.load_state_dict(best_state)
    return best_epoch


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


def write_with_readout(model_dir: Path, out: Path, readout: ProteinReadout, report: dict) -> None:
    """A copy of the model folder that answers location and membrane from the readout. Its calibration
    is dropped (it was fitted to the token answers): run `dbmtl calibrate` on the new folder."""
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder for the model with its readout")
    staging = out.with_name(f".{out.name}.dbmtl-readout")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    meta = json.loads((staging / "config.json").read_text())
    meta.pop("calibration", None)
    meta["readout"] = readout.save(staging)
    meta["readout_fit"] = report
    (staging / "config.json").write_text(json.dumps(meta, indent=1))
    staging.rename(out)
