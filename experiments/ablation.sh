#!/usr/bin/env bash
# Issue 4's two comparisons at the same compute: every run processes the same number of micro-batches of
# 4,096 tokens (a joint step of k tasks is k micro-batches, so the single-task runs take 5x the steps).
#  - table.md:    multi-task vs single-task, with and without LM (configs/default.json's mini encoder)
#  - decoders.md: the paper's decoder (teacher forcing), the leak-free decoders (noised teacher inputs,
#                 scheduled sampling, placeholder labels) and the encoder, all on the five tasks; audit on
#                 (honest beside leaky). decoder_sampled adds a gradient-free forward pass per per-residue
#                 micro-batch: same micro-batches, more FLOPs.
# Same data, optimizer and seed; each run's best/ is chosen on validation loss; test sets only score.
# Interrupt at will and run again: finished runs and reports are kept, training resumes.
#   bash experiments/ablation.sh            # all runs (hours on a 2-core CPU: 1,500 micro-batches per run)
#   bash experiments/ablation.sh joint      # some of them
#   THREADS=1 bash experiments/ablation.sh A B & THREADS=1 bash experiments/ablation.sh C D   # two lanes on 2 cores
#     (on this 2-core CPU a joint step took 5.5 s on 1 thread, 3.4 s on 2: two 1-thread lanes do more work; docs/results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/evaluation/ablation
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(joint decoder_teacher decoder_noised encoder_mlm_pool no_lm ss3_only loc_only ss8_only ms_only decoder_placeholder decoder_sampled)
for name in "${runs[@]}"; do
  cfg=experiments/configs/ablation/$name.json
  run=runs/ablation/$name
  resume=
  [ -f "$run/checkpoint/state.json" ] && resume=--resume
  .venv/bin/dbmtl train --config "$cfg" $resume --quiet --threads "${THREADS:-2}"
  case $name in
    ss3_only|ss8_only) sets=CB513,TS115 ;;
    loc_only|ms_only) sets=DeepLoc ;;
    *) sets=CB513,TS115,DeepLoc ;;
  esac
  audit=--no-audit
  case $name in decoder_*) audit= ;; esac  # the audit matters where a model read labels while training
  if [ ! -f "$out/$name/evaluation.json" ] || [ "$run/best/model.safetensors" -nt "$out/$name/evaluation.json" ]; then
    .venv/bin/dbmtl evaluate --model "$run/best" --sets "$sets" $audit --threads "${THREADS:-2}" -o "$out/$name" > /dev/null
  fi
done
# one table and one plot per comparison, of the runs finished so far
table() {  # table NAME RUN...
  local file=$1; shift
  local reports=() curves=()
  for name in "$@"; do
    [ -f "$out/$name/evaluation.json" ] && reports+=("$name=$out/$name/evaluation.json") && curves+=("$name=runs/ablation/$name")
  done
  [ ${#reports[@]} -gt 0 ] || return 0
  .venv/bin/dbmtl compare "${reports[@]}" -o "$out/$file.md"
  .venv/bin/dbmtl curves "${curves[@]}" -o "$out/$file.png" || echo "(no plot: pip install -e '.[plots]')"
}
table multitask joint no_lm ss3_only ss8_only loc_only ms_only
table decoders decoder_teacher decoder_noised decoder_sampled decoder_placeholder joint encoder_mlm_pool
