"""The paper's failure mode, made visible: scores that *do* read true labels, beside the honest one.

teacher-forced  the model reads the true previous labels (what the paper's withdrawn numbers did)
copy-previous   no model at all: each residue gets the true label of the residue before it
majority        no model at all: every residue gets the most common label of the set
If the honest score is close to the teacher-forced one and far above copy-previous, nothing leaks;
a model whose "honest" path read labels would score like teacher-forced or copy-previous.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from ..examples import max_residue_length
from ..prediction import Predictor, residue_windows, stitch_windows, token_budget_batches
from ..tasks import Task


@torch.inference_mode()
def teacher_forced_residues(predictor: Predictor, sequences: list[str], labels: list[str], task: Task) -> list[str]:
    """Predictions of a model fed `residues <CTRL> true-labels`: the leaky evaluation, for the audit only."""
    al = predictor.alphabet
    ids = torch.tensor(al.label_ids(task), device=predictor.device)
    window = max_residue_length(predictor.context)
    pieces, owners = [], []
    for seq, lab in zip(sequences, labels):
        wins = residue_windows(len(seq), window)
        owners.append(wins)
        pieces += [(seq[s:e], lab[s:e]) for s, e in wins]
    rows = [torch.cat([al.encode_residues(s), torch.tensor([al.control_id(task)]), al.encode_labels(task, lab[:-1])])
            for s, lab in pieces]
    probs: list[np.ndarray | None] = [None] * len(rows)
    for batch in token_budget_batches([len(r) for r in rows], predictor.batch_tokens):
        tokens, _ = predictor._right_pad([rows[i] for i in batch])
        logits = predictor.model(tokens)[..., ids].float().cpu().numpy()
        for j, i in enumerate(batch):
            n = len(pieces[i][0])
            probs[i] = logits[j, n : 2 * n]
    out, k = [], 0
    for seq, wins in zip(sequences, owners):
        p = probs[k : k + len(wins)]
        k += len(wins)
        merged = p[0] if len(wins) == 1 else stitch_windows(len(seq), wins, p)
        out.append("".join(task.labels[i] for i in merged.argmax(1)))
    return out


def copy_previous_labels(labels: list[str], first: str = "C") -> list[str]:
    return [first + lab[:-1] for lab in labels]


def majority_labels(labels: list[str], masks: list[np.ndarray]) -> list[str]:
    counts = Counter()
    for lab, m in zip(labels, masks):
        counts.update(c for c, keep in zip(lab, m) if keep)
    top = counts.most_common(1)[0][0]
    return [top * len(lab) for lab in labels]
