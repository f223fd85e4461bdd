#!/usr/bin/env bash
# The v4 candidates and the equal-compute comparison, side by side on one GPU inside a time budget
# (experiments/gpu_sweep.py), then each candidate's best/ exported in half precision and `dbmtl predict`
# timed on the GPU. Usage: bash experiments/gpu_v4.sh [BUDGET_S=360] [OUT_ROOT=runs/v4]
# Needs runs/v3_model (the bundled v3, taken from git: where experiments/configs/v4/sweep/mini_from_v3.json and
# configs/lineage/v4_from_v3.json start) and the shared data ($DBMTL_DATA). With $OUT set (the lent
# device machine), the results are packed there: a file at most 15 MiB, one model of the two base
# variants (the lower best validation loss). SWEEP=0: export, time and pack runs already there; DEVICE:
# where predict is timed (default cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-360}
root=${2:-runs/v4}
py=${PYTHON:-python3}
bash experiments/model_from_git.sh e0163ef runs/v3_model
[ "${SWEEP:-1}" = 0 ] || $py experiments/gpu_sweep.py experiments/configs/v4/sweep/*.json \
    --fixed experiments/configs/selection/fourpass_equal.json experiments/configs/selection/onepass_equal.json \
    --budget-s "$budget" --out-root "$root" --train-args "--threads 2"

candidates=$(cd experiments/configs/v4/sweep && ls *.json | sed 's/\.json$//')
for name in $candidates; do
    [ -f "$root/$name/best/model.safetensors" ] && $py -m dbmtl.cli export "$root/$name/best" "$root/export/$name" --dtype float16
done

query=${QUERY:-"${DBMTL_DATA:-../shared/data}/unlabeled/mmseqs2_examples/QUERY.fasta"}
echo -e "model\tdtype\twall_s" > "$root/predict_gpu.tsv"
for model in runs/v3_model $(ls -d "$root"/export/* 2>/dev/null); do
    for dtype in fp32 bf16; do
        [ "$model" = runs/v3_model ] || [ "$dtype" = bf16 ] || continue  # candidates: bf16 only (time)
        t0=$EPOCHREALTIME
        timeout 60 $py -m dbmtl.cli predict "$query" --model "$model" --device "${DEVICE:-cuda}" --dtype "$dtype" -o /tmp/predict_gpu --quiet \
            && echo -e "$model\t$dtype\t$(awk "BEGIN {printf \"%.2f\", $EPOCHREALTIME - $t0}")" >> "$root/predict_gpu.tsv"
        rm -rf /tmp/predict_gpu
    done
done
cat "$root/predict_gpu.tsv"

if [ -n "${OUT:-}" ]; then
    best_base=$($py - "$root" <<'EOF'
import json, sys
from pathlib import Path
def best(run):  # the mean validation loss the trainer chose best/ by, kept in its config.json
    valid = json.loads((run / "best" / "config.json").read_text())["valid"]
    return sum(v["loss"] for v in valid.values()) / len(valid)
runs = [p for p in Path(sys.argv[1]).glob("base*") if (p / "best" / "config.json").exists()]
print(min(runs, key=best).name if runs else "")
EOF
)
    for name in $candidates; do
        case $name in base*) [ "$name" = "$best_base" ] || continue ;; esac
        [ -d "$root/export/$name" ] || continue
        tar czf "/tmp/$name.tgz" -C "$root" "export/$name" "$name/log.jsonl" "$name/train_config.json"
        split -b 15m -d "/tmp/$name.tgz" "$OUT/$name.tgz.part"
    done
    tar czf "$OUT/logs.tgz" "$root"/*.out "$root"/plan.json "$root"/predict_gpu.tsv "$root"/configs \
        $(ls "$root"/*/log.jsonl "$root"/*/train_config.json 2>/dev/null | grep -v "/probe/")
    ls -la "$OUT"
fi
