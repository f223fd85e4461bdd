"""One `dbmtl serve` (bundled model, small limits) per test module, started as a user would."""
from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (fastapi, uvicorn) is not installed")

from dbmtl.service.load import running_server  # noqa: E402

LIMITS = ("--max-sequences", "20", "--max-residues", "6000", "--max-request-bytes", "60000")


@pytest.fixture(scope="module")
def server():
    """(process, base URL) of a server on 127.0.0.1 with the limits above; one torch thread."""
    with running_server(*LIMITS, "--threads", "1") as running:
        yield running


@pytest.fixture(scope="session")
def bundled():
    from dbmtl import Predictor

    return Predictor.from_pretrained("default")
