#!/usr/bin/env bash
# The SmolLM2 demo's real run against its two control arms (rft.grpo.control), one seed per call:
#   bench/smollm2_control.sh SEED [OUTPUT_DIR]
# 1. `rft demo --model smollm2-135m-instruct --seed SEED`, as a user runs it (10 minutes of wall time;
#    GRPO stops where the budget says, after N steps); its wall time from outside goes to OUT/sSEED/wall_s,
# 2. the shuffled and the random control, each `rft train` of the same config (src/rft/configs/demo_smollm2.yaml,
#    the same seed, data order, held-out set and constant learning rate) for the real run's N steps, with no time
#    limit, named as --control names them (demo-smollm2-control-MODE, beside the real run),
# 3. `rft report REAL CONTROL` for each control: the attribution line.
# Each command holds the shared CPU lock (/tmp/rft-cpu.lock) for its whole duration.
set -euo pipefail
SEED=${1:?usage: bench/smollm2_control.sh SEED [OUTPUT_DIR]}
OUT=${2:-runs/smollm2-control}/s$SEED
RFT="${PYTHON:-python} -m rft.cli"
CFG=src/rft/configs/demo_smollm2.yaml
mkdir -p "$OUT"
flock /tmp/rft-cpu.lock bash -c "t0=\$(date +%s.%N); $RFT demo --model smollm2-135m-instruct --seed $SEED \
  --output-dir $OUT > $OUT/demo.log 2>&1; echo \"\$(date +%s.%N) - \$t0\" | bc > $OUT/wall_s"
REAL=$OUT/demo-smollm2
N=$(grep -c '"type": "train"' "$REAL/metrics.jsonl")
echo "seed $SEED: the real run took $N GRPO steps in $(cat "$OUT/wall_s") s"
for arm in shuffled random; do
  flock /tmp/rft-cpu.lock $RFT train $CFG --set "seed=$SEED" --set "output_dir=$OUT" --set "grpo.steps=$N" \
    --set "name=demo-smollm2-control-$arm" --set "grpo.control=$arm" --quiet --overwrite > "$OUT/control-$arm.log" 2>&1
  flock /tmp/rft-cpu.lock $RFT report "$REAL" "$OUT/demo-smollm2-control-$arm" | tee "$OUT/attribution-$arm.txt"
done
