#!/usr/bin/env bash
# Rebuild the bundled default model from the shared data, exactly as it was made, and score it.
# 1. scripts/select_default.sh: two candidate recipes to step 150, chosen on validation loss (17 min);
# 2. the chosen run (configs/default.json = configs/selection/no_lm_conv9.json, out_dir runs/default)
#    continues to step 1,500 on 2 threads (about 85 min on a 2-core CPU);
# 3. export runs/default/best in half precision, evaluate on the test sets (about 5 min).
# Interrupt at will and run again: every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f runs/default/checkpoint/state.json ]; then
  bash scripts/select_default.sh
  mkdir -p runs && cp -r runs/selection/no_lm_conv9 runs/default
fi
.venv/bin/dbmtl train --config configs/default.json --resume --threads 2
.venv/bin/dbmtl export runs/default/best src/dbmtl/models/default --dtype float16
cp configs/default.json src/dbmtl/models/default/train_config.json
.venv/bin/dbmtl evaluate --model src/dbmtl/models/default -o docs/evaluation/default --threads 2
