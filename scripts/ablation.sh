#!/usr/bin/env bash
# Multi-task vs single-task, with and without the LM task, at the same compute: every run processes the
# same number of micro-batches of 4,096 tokens (a joint step of k tasks is k micro-batches, so the
# single-task runs take 5x the steps of the joint run). Same model (configs/default.json's mini encoder),
# data, optimizer and seed; each run's best/ is chosen on validation loss; test sets only score.
# Interrupt at will and run again: finished runs and reports are kept, training resumes.
#   bash scripts/ablation.sh            # all runs (hours on a 2-core CPU: 1,500 micro-batches per run)
#   bash scripts/ablation.sh joint      # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/evaluation/ablation
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(joint no_lm ss3_only ss8_only loc_only ms_only)
for name in "${runs[@]}"; do
  cfg=configs/ablation/$name.json
  run=runs/ablation/$name
  resume=
  [ -f "$run/checkpoint/state.json" ] && resume=--resume
  .venv/bin/dbmtl train --config "$cfg" $resume --quiet
  case $name in
    ss3_only|ss8_only) sets=CB513,TS115 ;;
    loc_only|ms_only) sets=DeepLoc ;;
    *) sets=CB513,TS115,DeepLoc ;;
  esac
  if [ ! -f "$out/$name/evaluation.json" ] || [ "$run/best/model.safetensors" -nt "$out/$name/evaluation.json" ]; then
    .venv/bin/dbmtl evaluate --model "$run/best" --sets "$sets" --no-audit --threads 2 -o "$out/$name" > /dev/null
  fi
done
reports=(); curves=()
for name in joint no_lm ss3_only ss8_only loc_only ms_only; do
  [ -f "$out/$name/evaluation.json" ] && reports+=("$name=$out/$name/evaluation.json") && curves+=("$name=runs/ablation/$name")
done
.venv/bin/dbmtl compare "${reports[@]}" -o "$out/table.md"
.venv/bin/dbmtl curves "${curves[@]}" -o "$out/curves.png" || echo "(no plot: pip install -e '.[plots]')"
