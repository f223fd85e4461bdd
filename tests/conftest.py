"""Shared fixtures: a helper that writes small input files (the real data folder, `data_dir`, is the
repository's conftest.py, shared with experiments/tests)."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest


@pytest.fixture
def tmp_fasta(tmp_path):
    """write(text, name=None) -> Path: writes `text` byte for byte (no newline translation) to a temp file."""
    counter = itertools.count(1)

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"input_{next(counter)}.fasta")
        path.write_bytes(text.encode("utf-8"))
        return path

    return write
