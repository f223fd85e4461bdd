"""The experiments' checks: the shared real-data folder, as the product's tests find it."""
from pathlib import Path

import pytest

from dbmtl.data.catalog import resolve_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Tests that need the real data are skipped when the folder is absent."""
    try:
        return resolve_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"real data folder not available: {exc}")
