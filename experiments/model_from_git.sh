#!/usr/bin/env bash
# Write the bundled model of a past commit into a folder, the start of a later model's training:
#   bash experiments/model_from_git.sh COMMIT DEST
# Nothing happens when DEST already holds the weights.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$1
dest=$2
[ -f "$dest/model.safetensors" ] && exit 0
mkdir -p "$dest"
for f in config.json model.safetensors vocab.json train_config.json; do
    git show "$commit:src/dbmtl/pretrained/default/$f" > "$dest/$f"
done
