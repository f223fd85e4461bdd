#!/usr/bin/env bash
# Create .venv and install dbmtl with its test extra. torch is pinned to the CPU build first so that
# pip never pulls several GB of CUDA wheels; pyproject only declares a lower bound.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
