"""Predictions from sequence alone: `Predictor` and its result type.

Per-residue labels (SS3, SS8) come from the strategy that fits how the model was trained (see
dbmtl.inference.decoding), never from a true label; their letters agree (SS3 = the 3-state class of SS8:
decoding.residue_letters). Proteins longer than the model's per-residue limit are
predicted in overlapping windows (each residue takes the window where it is most central); per-protein
tasks crop to the first and last halves of the context, as in training.

Speed (see docs/performance.md): rows are sorted by length and packed to a token budget (`batch_tokens`,
rows x longest row), every pass runs under `torch.inference_mode`, and the weights can run in bfloat16 or
float16 (`dtype`) or, on CPU, with dynamically quantized int8 linear layers (`int8`). A batch's result does
not depend on which other proteins share it (padding is masked), so any budget gives the same numbers to
float tolerance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..data.layouts import layout_for
from ..model.checkpoint import CheckpointError, load_checkpoint, model_folder
from ..model.readout import READOUTS, ProteinReadout, ResidueReadout, load_readout
from ..model.transformer import Transformer
from ..readers.fasta import nucleotide_problem
from ..tasks import OUTPUT_TASKS, RESIDUE_TASKS, TASKS, Task
from ..tokens import AMINO_ACIDS, Alphabet
from .calibration import apply_temperature, check_calibration, guess_thresholds
from .decoding import (RESIDUE_STRATEGIES, BatchedModel, label_slots, label_string, one_pass,  # noqa: F401
                       protein_probabilities, residue_letters, residue_states, residue_strategy)
from .runtime import default_batch_tokens, prepare_model, resolve_dtype
from .windows import windowed

_INVALID = re.compile(f"[^{AMINO_ACIDS}]")
_BY_FIELD = {task.field: name for name, task in TASKS.items() if task.field}


@dataclass
class ProteinPrediction:
    """One protein's answers. `labels` and `probabilities` are keyed by task name; each task's output
    field (ss3, ss8, location, membrane: see dbmtl.tasks) is also an attribute, None when not predicted."""

    id: str
    sequence: str
    labels: dict[str, str] = field(default_factory=dict)             # task -> label string (per residue) or label
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # task -> (L, n) or (n,)
    description: str = ""  # the FASTA header after '>', id included
    guess_below: dict[str, float] = field(default_factory=dict)  # task -> its model's guess threshold

    def __getattr__(self, name: str):
        if name in _BY_FIELD:
            return self.labels.get(_BY_FIELD[name])
        raise AttributeError(name)


class Predictor:
    """dtype: "fp32" (default; exact), "bf16" / "fp16" (weights and activations in half precision, outputs
    softmaxed in float32), or "auto" (bf16 on a GPU with bf16, else fp32). int8: dynamic int8 linear layers
    (CPU only). A half-precision or int8 predictor works on its own copy, never on the model passed in.
    batch_tokens: rows x longest row per forward batch (default: default_batch_tokens(device)).
    attention: "sdpa" (torch's fused kernels), "blocked" (dbmtl.model.transformer.blocked_attention) or
    "auto" (blocked for half precision on a CPU, else sdpa). readout: a onepass model's per-protein readout
    (dbmtl.model.readout): location and membrane from it instead of the <LOC> / <MS> tokens;
    residue_readout: its per-residue readout, SS8 (and so SS3) from it instead of the head."""

    def __init__(self, model: Transformer, alphabet: Alphabet, meta: dict | None = None,
                 device: str | torch.device = "cpu", batch_tokens: int | None = None,
                 dtype: str | torch.dtype | None = "fp32", int8: bool = False, attention: str | None = "auto",
                 readout: ProteinReadout | None = None, residue_readout: ResidueReadout | None = None):
        self.device = torch.device(device)
        if batch_tokens is None:
            batch_tokens = default_batch_tokens(self.device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model, self.attention = prepare_model(model, self.device, self.dtype, int8, attention)
        self.int8 = int8
        self.alphabet = alphabet
        self.meta = meta or {}
        # per-protein temperatures fitted on validation proteins (`dbmtl calibrate`); {} = the raw softmax
        self.temperatures = check_calibration(self.meta.get("calibration", {}),
                                              f"{self.meta.get('folder', 'model')}/config.json")
        self.guess_below = guess_thresholds(self.meta.get("calibration", {}))
        cfg = model.cfg
        self.context = cfg.context
        self.kind = cfg.kind
        self.layout = layout_for(cfg.kind, alphabet, cfg.context, cfg.n_segments)
        self.residue_mode = residue_strategy(cfg.kind, cfg.label_inputs)
        self.runner = BatchedModel(self.model, alphabet, self.device, self.dtype, batch_tokens)
        if (readout is not None or residue_readout is not None) and cfg.kind != "onepass":
            raise ValueError(f"a readout reads one-pass rows; this model is a {cfg.kind}")
        self.readout = None if readout is None else readout.to(self.device)
        self.residue_readout = None if residue_readout is None else residue_readout.to(self.device)

    @property
    def batch_tokens(self) -> int:
        """Rows x longest row per forward batch; the runner holds it, so setting it here takes effect."""
        return self.runner.batch_tokens

    @batch_tokens.setter
    def batch_tokens(self, value: int) -> None:
        self.runner.batch_tokens = value

    @classmethod
    def from_pretrained(cls, path: str | Path = "default", device: str = "cpu", **kw) -> "Predictor":
        """Load a checkpoint directory; "default" is the model bundled with the package. Keywords go to
        the constructor (batch_tokens, dtype, int8, attention)."""
        folder = model_folder(path)
        model, alphabet, meta = load_checkpoint(folder, device)
        readouts = {}
        for key in READOUTS:
            if key in meta:
                try:
                    readouts[key] = load_readout(folder, meta[key], key)
                except ValueError as exc:
                    raise CheckpointError(f"{folder}: {exc}") from None
        return cls(model, alphabet, {**meta, "folder": str(folder)}, device=device, **readouts, **kw)

    def predict(self, sequences, tasks: Iterable[str] = OUTPUT_TASKS,
                allow_nucleotides: bool = False) -> list[ProteinPrediction]:
        """sequences: a list of strings, a dict id -> sequence, or records with .id and .sequence; tasks: a
        list of names from OUTPUT_TASKS. A sequence that looks like DNA or RNA is refused (ValueError)
        unless allow_nucleotides."""
        tasks = check_tasks(tasks)
        items = _as_items(sequences)
        for rid, seq, _ in items:
            check_sequence(rid, seq, allow_nucleotides)
        seqs = [s for _, s, _ in items]
        preds = [ProteinPrediction(rid, seq, description=desc, guess_below=self.guess_below)
                 for rid, seq, desc in items]
        answers = self.one_pass(seqs) if self.kind == "onepass" else None  # every task from one pass
        for name in tasks:
            task = TASKS[name]
            if task.kind == "residue":
                results = [a[name] for a in answers] if answers is not None else self.predict_residues(seqs, task)
                _check_finite(results, preds, name)
                for p, probs in zip(preds, results):
                    p.probabilities[name] = probs
            elif task.kind == "protein":
                probs = [a[name] for a in answers] if answers is not None else self.predict_proteins(seqs, task)
                _check_finite(probs, preds, name)
                for p, pr in zip(preds, probs):
                    p.probabilities[name] = pr
                    p.labels[name] = task.labels[int(pr.argmax())]
            else:
                raise ValueError(f"task {name!r} has no prediction output")
        residue = [t for t in tasks if TASKS[t].kind == "residue"]
        for k, p in enumerate(preds):
            if residue:  # a onepass model has both distributions whatever was asked: letters do not depend on `tasks`
                given = answers[k] if answers is not None else p.probabilities
                letters = residue_letters({t: given[t] for t in RESIDUE_TASKS if t in given})
                p.labels.update((t, letters[t]) for t in residue)
        return preds

    def predict_proteins(self, sequences: Sequence[str], task: Task) -> list[np.ndarray]:
        """(n_labels,) probabilities per protein for a per-protein task."""
        if self.kind == "onepass":
            return [a[task.name] for a in self.one_pass(sequences)]
        t = self.temperatures.get(task.name, 1.0)
        return [apply_temperature(p, t) for p in protein_probabilities(self.runner, self.layout, task, list(sequences))]

    def one_pass(self, sequences: Sequence[str]) -> list[dict[str, np.ndarray]]:
        """A onepass model's four answers per protein ({task: probabilities}), one pass per row."""
        answers = one_pass(self.runner, self.layout, list(sequences), self.readout, self.residue_readout)
        for name, t in self.temperatures.items():
            for a in answers:
                a[name] = apply_temperature(a[name], t)
        return answers

    @torch.inference_mode()
    def predict_residues(self, sequences: Sequence[str], task: Task, mode: str | None = None) -> list[np.ndarray]:
        """(L, n_labels) probabilities per protein for a per-residue task, never reading a true label."""
        mode = mode or self.residue_mode
        if self.kind == "onepass" and mode == "onepass":
            return [a[task.name] for a in self.one_pass(sequences)]
        if mode not in RESIDUE_STRATEGIES:
            raise ValueError(f"unknown per-residue mode {mode!r}")
        if (mode == "encoder") != (self.kind == "encoder"):
            raise ValueError(f"mode {mode!r} does not fit a {self.kind} model")
        strategy = RESIDUE_STRATEGIES[mode]
        return windowed(sequences, self.layout.max_residue_length(), lambda pieces: strategy(self.runner, task, pieces))

    def embed(self, sequences: Sequence[str], task: str = "ss8", allow_nucleotides: bool = False) -> list[np.ndarray]:
        """(L, n_embd) float32 per-residue embeddings: the final hidden states the output head reads, from
        the row of `task` (see decoding.residue_states), long proteins in windows as for prediction. A
        per-protein embedding is their mean over residues (dbmtl.inference.embed). Sequences are checked as
        for predict: a DNA- or RNA-looking one is refused unless allow_nucleotides."""
        if not isinstance(task, str) or task not in OUTPUT_TASKS:
            raise ValueError(f"task must be one of {', '.join(OUTPUT_TASKS)}, not {task!r}")
        if isinstance(sequences, (str, bytes)):
            raise TypeError("pass a list of sequences, not a single string")
        sequences = list(sequences)
        for n, seq in enumerate(sequences, 1):
            if not isinstance(seq, str):
                raise TypeError(f"sequence {n}: a sequence must be a string, not {type(seq).__name__}")
            check_sequence(f"seq{n}", seq, allow_nucleotides)
        return windowed(sequences, self.layout.max_residue_length(),
                        lambda pieces: residue_states(self.runner, self.layout, TASKS[task], pieces))

    @torch.inference_mode()
    def teacher_forced_residues(self, sequences: Sequence[str], labels: Sequence[str], task: Task) -> list[np.ndarray]:
        """(L, n_labels) probabilities of a decoder fed `residues <CTRL> true-labels`: the paper's leaky
        evaluation, for the audit only (it reads the true labels)."""
        if self.kind != "decoder":
            raise ValueError(f"the {self.kind} kind never reads labels: it has no teacher-forced score")

        def pass_over(pieces):
            seqs = [s for s, _ in pieces]
            answers = [self.alphabet.encode_labels(task, lab[:-1]) for _, lab in pieces]
            return label_slots(self.runner, task, seqs, answers)

        return windowed(sequences, self.layout.max_residue_length(), pass_over, labels=labels)


def check_sequence(rid: str, seq: str, allow_nucleotides: bool = False) -> None:
    """Raise an error naming the protein and 1-based position of the first letter the model cannot read,
    or saying that it looks like DNA or RNA (readers.fasta.nucleotide_problem) unless allow_nucleotides."""
    if not seq:
        raise ValueError(f"protein {rid!r}: empty sequence")
    bad = _INVALID.search(seq)
    if bad is not None:
        raise ValueError(f"protein {rid!r}: invalid character {bad.group()!r} at position {bad.start() + 1}")
    nucleotides = None if allow_nucleotides else nucleotide_problem(seq)
    if nucleotides:
        raise ValueError(f"protein {rid!r}: {nucleotides}")


def check_tasks(tasks: Iterable[str]) -> tuple[str, ...]:
    """The output tasks asked for, in OUTPUT_TASKS order; a TypeError or ValueError naming the choices for
    anything else (a bare string such as "ss3", an unknown name, none at all)."""
    choices = ",".join(OUTPUT_TASKS)
    if isinstance(tasks, (str, bytes)):
        raise TypeError(f"tasks must be a list of task names, such as [{tasks!r}], not the string {tasks!r}; "
                        f"choose from {choices}")
    try:
        tasks = list(tasks)
    except TypeError:
        raise TypeError(f"tasks must be a list of task names from {choices}, not {type(tasks).__name__}") from None
    unknown = [t for t in tasks if not isinstance(t, str) or t not in OUTPUT_TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {choices}")
    if not tasks:
        raise ValueError(f"no tasks chosen; choose from {choices}")
    return tuple(t for t in OUTPUT_TASKS if t in tasks)


def _check_finite(probabilities: list[np.ndarray], preds: list[ProteinPrediction], task: str) -> None:
    """A model that outputs NaN or inf (broken weights, an overflow in half precision) must not be
    turned into confident-looking labels."""
    for p, pr in zip(preds, probabilities):
        if not np.isfinite(pr).all():
            raise ValueError(f"protein {p.id!r}: the model's {task} output is not a finite number (NaN or inf); "
                             "its weights may be damaged, or try --dtype fp32")


def _as_items(sequences) -> list[tuple[str, str, str]]:
    """(id, upper-case sequence, description) of each input; a clear TypeError for anything else."""
    if isinstance(sequences, (str, bytes)):
        raise TypeError("pass a list or dict of sequences, not a single string")
    if isinstance(sequences, dict):
        pairs = [(str(k), v, str(k)) for k, v in sequences.items()]
    else:
        try:
            listed = list(sequences)
        except TypeError:
            raise TypeError(f"sequences must be a list, a dict id -> sequence or records, not {type(sequences).__name__}") from None
        pairs = []
        for n, s in enumerate(listed, 1):
            if isinstance(s, str) or not (hasattr(s, "id") and hasattr(s, "sequence")):
                pairs.append((f"seq{n}", s, f"seq{n}"))
            else:
                pairs.append((str(s.id), s.sequence, getattr(s, "description", "") or str(s.id)))
    for rid, seq, _ in pairs:
        if not isinstance(seq, str):
            raise TypeError(f"protein {rid!r}: a sequence must be a string, not {type(seq).__name__}")
    return [(rid, seq.upper(), desc) for rid, seq, desc in pairs]
