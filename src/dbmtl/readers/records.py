"""Typed records that every reader yields and every later stage consumes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ResidueRecord:
    """A protein with per-residue secondary-structure labels.

    ss3/ss8: one letter per residue, or None when the source lacks that label set.
    resolved: True where the residue has coordinates; only those count in loss and score.
    split: "train", "valid" or "test".
    """

    id: str
    sequence: str
    ss3: str | None
    ss8: str | None
    resolved: np.ndarray
    split: str = "train"
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.sequence)
        for name in ("ss3", "ss8"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"record {self.id!r}: {name} has {len(value)} labels for {n} residues")
        if len(self.resolved) != n:
            raise ValueError(f"record {self.id!r}: mask has {len(self.resolved)} entries for {n} residues")


@dataclass
class ProteinRecord:
    """A protein with per-protein labels; None means unknown (excluded from loss and score).

    locations: set for a protein with several locations (DeepLoc 2.0); its `location` is then None, so
    a hard-label loss or score never sees it, and training may use them as a soft target.
    """

    id: str
    sequence: str
    location: str | None
    membrane: str | None
    split: str = "train"
    source: str = ""
    locations: tuple[str, ...] | None = None
