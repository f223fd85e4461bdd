"""Fixtures of every test folder (tests/ and experiments/tests/): the shared real-data folder."""
from __future__ import annotations

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
