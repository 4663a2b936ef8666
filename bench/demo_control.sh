#!/usr/bin/env bash
# The tiny demo's real run against its two control arms (rft.grpo.control), one seed per call:
#   bench/demo_control.sh SEED [OUTPUT_DIR]
# 1. the demo's SFT warm start (src/rft/configs/demo.yaml, seed SEED),
# 2. `rft train --control shuffled`: the real GRPO run, then its shuffled-reward control,
# 3. the random-reward control alone (grpo.control=random, named as --control names it),
# 4. `rft report REAL CONTROL` for each control: the attribution line.
# Each command holds the shared CPU lock (/tmp/rft-cpu.lock) for its whole duration.
set -euo pipefail
SEED=${1:?usage: bench/demo_control.sh SEED [OUTPUT_DIR]}
OUT=${2:-runs/demo-control}
RFT="${PYTHON:-python} -m rft.cli"
CFG=src/rft/configs/demo.yaml
NAME=demo-s$SEED
common=(--set "seed=$SEED" --set "output_dir=$OUT" --set "name=$NAME")
flock /tmp/rft-cpu.lock $RFT sft $CFG "${common[@]}" --quiet --overwrite
WARM=$OUT/$NAME-sft/model
flock /tmp/rft-cpu.lock $RFT train $CFG "${common[@]}" --set "model.path=$WARM" --control shuffled --quiet --overwrite
flock /tmp/rft-cpu.lock $RFT train $CFG --set "seed=$SEED" --set "output_dir=$OUT" \
  --set "name=$NAME-control-random" --set "model.path=$WARM" --set grpo.control=random --quiet --overwrite
for arm in shuffled random; do
  flock /tmp/rft-cpu.lock $RFT report "$OUT/$NAME" "$OUT/$NAME-control-$arm" | tee "$OUT/$NAME-attribution-$arm.txt"
done
