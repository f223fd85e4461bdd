#!/usr/bin/env bash
# Rebuild the v2 model (the bundled default until v3; v3 starts from its weights) from the shared data,
# exactly as it was made, and score it.
# 1. experiments/select_default.sh: two candidate recipes to step 150, chosen on validation loss (~18 min);
# 2. the chosen one (configs/default.json, runs/default) continues to step 1,500 on 2 threads
#    (105 min on a 2-core CPU in the run that made the bundled model);
# 3. export runs/default/best in half precision, evaluate on the test sets (about 3 min).
# Interrupt at will and run again: every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/select_default.sh
.venv/bin/dbmtl train --config configs/default.json --resume --threads 2
.venv/bin/dbmtl export runs/default/best runs/v2 --dtype float16
cp configs/default.json runs/v2/train_config.json
.venv/bin/dbmtl evaluate --model runs/v2 -o docs/evaluation/v2 --threads 2
