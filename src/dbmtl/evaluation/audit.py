"""The paper's failure mode, made visible: scores that *do* read true labels, beside the honest one.

teacher-forced  the model reads the true previous labels (what the paper's withdrawn numbers did);
                only for models trained with teacher forcing: a placeholder model never reads labels
copy-previous   no model at all: each residue gets the true label of the residue before it
majority        no model at all: every residue gets the most common label of the set
If the honest score is close to the teacher-forced one and far above copy-previous, nothing leaks;
a model whose "honest" path read labels would score like teacher-forced or copy-previous.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..inference.predictor import Predictor
from ..tasks import Task


def teacher_forced_residues(predictor: Predictor, sequences: list[str], labels: list[str], task: Task) -> list[str]:
    """Predictions of a model fed `residues <CTRL> true-labels`: the leaky evaluation, for the audit only.

    Meaningful for models trained with teacher forcing; a placeholder model never saw labels as inputs.
    """
    merged = predictor.teacher_forced_residues(sequences, labels, task)
    return ["".join(task.labels[i] for i in m.argmax(1)) for m in merged]


def copy_previous_labels(labels: list[str], first: str = "C") -> list[str]:
    return [first + lab[:-1] for lab in labels]


def majority_labels(labels: list[str], masks: list[np.ndarray]) -> list[str]:
    counts = Counter()
    for lab, m in zip(labels, masks):
        counts.update(c for c, keep in zip(lab, m) if keep)
    top = counts.most_common(1)[0][0]
    return [top * len(lab) for lab in labels]
