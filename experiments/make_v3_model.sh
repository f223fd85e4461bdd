#!/usr/bin/env bash
# Rebuild the v3 model (the bundled default until v4; v4 starts from its weights) from the shared data,
# exactly as it was made, and score it.
# 1. v3 starts from the v2 weights: taken from git (commit 15e696e, fingerprint 6beee8a10a1ce12b) into
#    runs/v2; `bash experiments/make_v2_model.sh` retrains them from scratch instead (about 2 hours);
# 2. configs/lineage/v3_onepass_from_v2.json: the onepass kind, 800 steps (1 h 47 min on 2 threads of a 2-core CPU);
# 3. export its best/ in half precision to runs/v3_model, fit the temperatures of its per-protein answers
#    on its validation proteins (dbmtl calibrate), evaluate on the test sets.
# Interrupt at will and run again: every stage resumes. The v3 that was bundled is also in git:
# `git show e0163ef:src/dbmtl/pretrained/default/FILE` (scripts/make_default_model.sh takes it from there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash experiments/model_from_git.sh 15e696e runs/v2
run=runs/v3/onepass_from_v2
.venv/bin/dbmtl train --config configs/lineage/v3_onepass_from_v2.json --threads 2 $( [ -f $run/checkpoint/state.json ] && echo --resume )
.venv/bin/dbmtl export $run/best runs/v3_model --dtype float16
cp configs/lineage/v3_onepass_from_v2.json runs/v3_model/train_config.json
.venv/bin/dbmtl calibrate runs/v3_model --threads 2
.venv/bin/dbmtl evaluate --model runs/v3_model -o docs/evaluation/v3 --threads 2
