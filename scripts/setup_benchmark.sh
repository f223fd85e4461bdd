#!/usr/bin/env bash
# The benchmark's own set-up: MMseqs2 (the alignment baseline, Debian package `mmseqs2`) and matplotlib
# (the plot, the `plots` extra). Neither is needed by predict / evaluate / train or by the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mmseqs >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmseqs2
  else
    echo "setup_benchmark: no apt-get; install MMseqs2 yourself (https://github.com/soedinglab/MMseqs2)" >&2
  fi
fi
if [ -x .venv/bin/python ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[plots]"
fi
command -v mmseqs >/dev/null && mmseqs version || true
