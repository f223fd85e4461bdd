#!/usr/bin/env bash
# Choose the bundled model's recipe on validation data only. Two candidates with the same data, tasks,
# optimizer, 1,500-step schedule and seed: the v1 recipe without the LM task (experiments/configs/selection/no_lm.json,
# runs/selection/no_lm), and the same with a 9-wide convolution in every block (configs/default.json,
# runs/default). Both train side by side, one thread each, to step 150 (about 18 minutes on a 2-core CPU,
# ~7 s per step each); then the validation loss and accuracy of both, every 50 steps. The lower mean
# validation loss continues to step 1,500 (experiments/make_v2_model.sh). Rerun to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-150}
for config in experiments/configs/selection/no_lm.json configs/default.json; do
  out=$(.venv/bin/python -c "import json, sys; print(json.load(open(sys.argv[1]))['out_dir'])" "$config")
  resume=; [ -f "$out/checkpoint/state.json" ] && resume=--resume
  .venv/bin/dbmtl train --config "$config" --threads 1 --max-steps "$STEPS" $resume --quiet &
done
wait
.venv/bin/dbmtl curves --valid-table --max-step "$STEPS" no_lm=runs/selection/no_lm no_lm_conv9=runs/default
