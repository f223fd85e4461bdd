#!/usr/bin/env bash
# Rebuild the bundled default model from the shared data, exactly as it was made, and score it.
# About 1 hour of training on a 2-core CPU; interrupt at will and run again: training resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f runs/default/checkpoint/state.json ]; then resume=--resume; else resume=; fi
.venv/bin/dbmtl train --config configs/default.json $resume
.venv/bin/dbmtl export runs/default/best src/dbmtl/models/default --dtype float16
cp configs/default.json src/dbmtl/models/default/train_config.json
.venv/bin/dbmtl evaluate --model src/dbmtl/models/default -o docs/evaluation/default --threads 2
