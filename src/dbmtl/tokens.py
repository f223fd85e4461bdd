"""Alphabet: every token the model reads or writes, and the mapping to integer ids.

Layout: specials, 25 amino acids, the five control tokens, then each task's label tokens (distinct from
amino-acid letters, so the SS3 label "H" is never the residue His). The vocabulary is saved with every
checkpoint and compared on load, so a model can never be run with a shifted token table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .tasks import TASKS, Task

if TYPE_CHECKING:
    import torch

STANDARD_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# U selenocysteine, O pyrrolysine, B Asx, Z Glx, X unknown.
AMINO_ACIDS = STANDARD_AMINO_ACIDS + "XBZUO"

PAD, EOS, MASK = "<pad>", "<eos>", "<mask>"  # <mask>: reserved for masked-LM pre-training of the encoder kind
SPECIALS = (PAD, EOS, MASK)


def default_tokens() -> list[str]:
    toks = list(SPECIALS) + list(AMINO_ACIDS)
    toks += [task.control for task in TASKS.values()]
    for task in TASKS.values():
        toks += list(task.label_tokens)
    return toks


@dataclass
class Alphabet:
    tokens: list[str] = field(default_factory=default_tokens)

    def __post_init__(self) -> None:
        self.index = {tok: i for i, tok in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("duplicate tokens in alphabet")
        self.pad_id = self.index[PAD]
        self.eos_id = self.index[EOS]
        self.mask_id = self.index[MASK]
        import torch  # here, not at module level: the readers need the letters above, not torch

        # Lookup table from byte value to residue id for fast sequence encoding.
        self._residue_lut = torch.full((256,), -1, dtype=torch.long)
        for aa in AMINO_ACIDS:
            self._residue_lut[ord(aa)] = self.index[aa]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode_residues(self, sequence: str) -> "torch.Tensor":
        """Residue ids of an (already validated, upper-case) sequence."""
        import torch

        raw = torch.frombuffer(bytearray(sequence.encode("ascii")), dtype=torch.uint8).long()
        ids = self._residue_lut[raw]
        if (ids < 0).any():
            bad = sequence[int((ids < 0).nonzero()[0])]
            raise ValueError(f"not an amino-acid letter: {bad!r}")
        return ids

    def control_id(self, task: Task) -> int:
        return self.index[task.control]

    def label_ids(self, task: Task) -> list[int]:
        return [self.index[t] for t in task.label_tokens]

    def encode_labels(self, task: Task, labels: str | list[str]) -> "torch.Tensor":
        import torch

        if isinstance(labels, str) and task.kind == "residue":
            labels = list(labels)
        elif isinstance(labels, str):
            labels = [labels]
        return torch.tensor([self.index[task.label_token(lab)] for lab in labels], dtype=torch.long)

    def decode(self, ids) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens}, indent=1)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Alphabet":
        return cls(json.loads(Path(path).read_text())["tokens"])

    def check_compatible(self, other: "Alphabet", where: str = "checkpoint") -> None:
        if self.tokens != other.tokens:
            diff = next(
                (i for i, (a, b) in enumerate(zip(self.tokens, other.tokens)) if a != b),
                min(len(self.tokens), len(other.tokens)),
            )
            raise ValueError(
                f"vocabulary of {where} does not match this dbmtl version "
                f"({len(other.tokens)} vs {len(self.tokens)} tokens, first difference at id {diff})"
            )
