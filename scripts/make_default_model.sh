#!/usr/bin/env bash
# Rebuild the bundled default model (v3) from the shared data, exactly as it was made, and score it.
# 1. v3 starts from the v2 weights: taken from git (commit 15e696e, fingerprint 6beee8a10a1ce12b) into
#    runs/v2; `bash scripts/make_v2_model.sh` retrains them from scratch instead (about 2 hours);
# 2. configs/v3/onepass_from_v2.json: the onepass kind, 800 steps on 2 threads (runs/v3/onepass_from_v2);
# 3. export its best/ (lowest mean validation loss) in half precision, fit the temperatures of its
#    per-protein answers on its validation proteins (dbmtl calibrate), evaluate on the test sets.
# Interrupt at will and run again: every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f runs/v2/model.safetensors ]; then
    mkdir -p runs/v2
    for f in config.json model.safetensors vocab.json train_config.json; do
        git show "15e696e:src/dbmtl/pretrained/default/$f" > "runs/v2/$f"
    done
fi
run=runs/v3/onepass_from_v2
.venv/bin/dbmtl train --config configs/v3/onepass_from_v2.json --threads 2 $( [ -f $run/checkpoint/state.json ] && echo --resume )
.venv/bin/dbmtl export $run/best src/dbmtl/pretrained/default --dtype float16
cp configs/v3/onepass_from_v2.json src/dbmtl/pretrained/default/train_config.json
.venv/bin/dbmtl calibrate src/dbmtl/pretrained/default --threads 2
.venv/bin/dbmtl evaluate --model src/dbmtl/pretrained/default -o docs/evaluation/default --threads 2
