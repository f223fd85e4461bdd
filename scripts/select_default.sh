#!/usr/bin/env bash
# Choose the bundled model's recipe on validation data only. Two candidates with the same data, tasks,
# optimizer, 1,500-step schedule and seed (configs/selection/): the bundled v1 recipe without the LM task
# (which cost every task accuracy in the ablation), and the same with a 9-wide convolution in every block.
# Both train side by side, one thread each, to step 150; the script prints their validation loss and
# accuracy every 50 steps. The lower mean validation loss continues (scripts/make_default_model.sh).
# About 17 minutes on this 2-core CPU; rerun to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-150}
for name in no_lm no_lm_conv9; do
  resume=; [ -f "runs/selection/$name/checkpoint/state.json" ] && resume=--resume
  .venv/bin/dbmtl train --config "configs/selection/$name.json" --threads 1 --max-steps "$STEPS" $resume --quiet &
done
wait
.venv/bin/python - "$STEPS" <<'PY'
import json, sys
steps = int(sys.argv[1])
print("| run | step | SS3 loss / acc | SS8 loss / acc | LOC loss / acc | MS loss / acc | mean loss |")
print("|---|---:|---|---|---|---|---:|")
for name in ("no_lm", "no_lm_conv9"):
    for line in open(f"runs/selection/{name}/log.jsonl"):
        r = json.loads(line)
        if "valid" in r and r["step"] <= steps:
            v = r["valid"]
            cells = " | ".join(f"{v[t]['loss']:.3f} / {100 * v[t]['accuracy']:.1f}" for t in ("ss3", "ss8", "loc", "ms"))
            print(f"| {name} | {r['step']} | {cells} | {sum(x['loss'] for x in v.values()) / len(v):.4f} |")
PY
