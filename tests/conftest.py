"""Shared fixtures: the real data folder and a helper that writes small input files."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dbmtl.data.catalog import resolve_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data folder; tests that need it are skipped when it is absent."""
    try:
        return resolve_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"real data folder not available: {exc}")


@pytest.fixture
def tmp_fasta(tmp_path):
    """write(text, name=None) -> Path: writes `text` byte for byte (no newline translation) to a temp file."""
    counter = itertools.count(1)

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"input_{next(counter)}.fasta")
        path.write_bytes(text.encode("utf-8"))
        return path

    return write
