#!/usr/bin/env bash
# The bundled model's recipe, from nothing to the shipped weights: each stage of the lineage trains from
# the previous stage's exported weights (the folder its config's `init_from` names), on the shared data.
# Every stage resumes: interrupt at will and run again. Stages whose exported folder exists are skipped.
#
#   stage  config                                    starts from      made on (docs/results.md)
#   v2     configs/default.json                      nothing          2-core CPU, 1,500 steps (~2 h)
#   v3     configs/lineage/v3_onepass_from_v2.json   runs/v2          2-core CPU, 800 steps
#   v4     configs/lineage/v4_from_v3.json           runs/v3_model    H200 in 124 s, 1,808 steps (~4 h on a CPU)
#   v5a    configs/lineage/v5a_from_v4_cpu.json      runs/v4_model    1 CPU thread, 600 steps (~1 h 45 min)
#   v5c    configs/lineage/v5c_from_v5a_cpu.json     lineage/v5a      1 CPU thread, 720 steps (~2 h 15 min)
#   v5d    configs/lineage/v5d_from_v5c_cpu.json     lineage/v5c      1 CPU thread, 500 steps (~1 h 25 min)
#   v5d-r  dbmtl fit-readout (location and membrane, and secondary structure, from readouts on the frozen
#          backbone; the per-residue one with the cosine learning rate; ~1 h)
#
# The v5 stages export to lineage/ (where the next stage's init_from reads them). The tree keeps only the
# lineage head's weights (a device call carries the tree); the stages already made are restored from the
# commit that last held them (restore, below), so only a clone without that history replays them.
# The lineage goes on past the bundled stage (lineage/README.md); a stage is bundled when validation says so.
# The bundled stage is copied into src/dbmtl/pretrained/default, its per-protein answers calibrated on its
# own validation proteins (dbmtl calibrate) and scored on the test sets.
# Usage: bash scripts/make_default_model.sh [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
dbmtl=.venv/bin/dbmtl

stage() {  # stage CONFIG EXPORT_TO: train (resuming), then export the run's best/ (lowest mean validation loss)
    local config=$1 export_to=$2 run
    [ -f "$export_to/model.safetensors" ] && return 0
    run=$(.venv/bin/python -c "import json, sys; print(json.load(open(sys.argv[1]))['out_dir'])" "$config")
    $dbmtl train --config "$config" --threads "$threads" $( [ -f "$run/checkpoint/state.json" ] && echo --resume )
    $dbmtl export "$run/best" "$export_to" --dtype float16
    cp "$config" "$export_to/train_config.json"
}

restore() {  # restore FOLDER: a lineage stage's weights from the commit that last held them in the tree
    local folder=$1 commit=9744c60 f
    [ -f "$folder/model.safetensors" ] && return 0
    git cat-file -e "$commit:$folder/model.safetensors" 2>/dev/null || return 0  # not in this clone: replay it
    for f in model.safetensors config.json vocab.json; do git show "$commit:$folder/$f" > "$folder/$f"; done
}

for s in v5a v5c v5d; do restore lineage/$s; done
stage configs/default.json runs/v2
stage configs/lineage/v3_onepass_from_v2.json runs/v3_model
stage configs/lineage/v4_from_v3.json runs/v4_model
stage configs/lineage/v5a_from_v4_cpu.json lineage/v5a
stage configs/lineage/v5c_from_v5a_cpu.json lineage/v5c
stage configs/lineage/v5d_from_v5c_cpu.json lineage/v5d
[ -d runs/v5d_readouts_cosine ] || $dbmtl fit-readout lineage/v5d -o runs/v5d_readouts_cosine --threads "$threads"

rm -rf src/dbmtl/pretrained/default
cp -r runs/v5d_readouts_cosine src/dbmtl/pretrained/default
rm -f src/dbmtl/pretrained/default/log.jsonl  # the training log stays with its lineage stage
$dbmtl calibrate src/dbmtl/pretrained/default --threads "$threads"
$dbmtl evaluate --model src/dbmtl/pretrained/default -o docs/evaluation/default --threads "$threads"
