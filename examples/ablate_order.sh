#!/usr/bin/env bash
# Ablation: which image is which. Today's objective vs swapped-text hard negatives (--hard-negatives swap) vs
# also both orders of every pair (--reversal-pairs), on oracle comparatives with and without relation sentences
# (`--llm-option relations=true`: counts compared, size and colour as a change from the first image to the
# second), TRAIN_SEEDS training seeds each.
#   bash examples/ablate_order.sh          # then see runs/ablate_order/report.md
#   ARMS="none swap-rev" TRAIN_SEEDS=1 bash examples/ablate_order.sh   # a subset of the arms
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}
TRAIN_SEEDS=${TRAIN_SEEDS:-0 1 2}
ARMS=${ARMS:-none swap swap-rev rel-none rel-swap-rev}
baseline
plain=$(comparatives template template "$PAIRS")
rel=
if wanted rel-none || wanted rel-swap-rev; then
  rel=$(comparatives template-relations template "$PAIRS" --llm-option relations=true)
fi
for s in $TRAIN_SEEDS; do
  ! wanted none || arm "none-s$s" "$plain" "arm=none train_seed=$s" --seed "$s"
  ! wanted swap || arm "swap-s$s" "$plain" "arm=swap train_seed=$s" --seed "$s" --hard-negatives swap
  ! wanted swap-rev || arm "swap-rev-s$s" "$plain" "arm=swap+reversal train_seed=$s" --seed "$s" \
    --hard-negatives swap --reversal-pairs
  ! wanted rel-none || arm "rel-none-s$s" "$rel" "arm=relations train_seed=$s" --seed "$s"
  ! wanted rel-swap-rev || arm "rel-swap-rev-s$s" "$rel" "arm=relations+swap+reversal train_seed=$s" --seed "$s" \
    --hard-negatives swap --reversal-pairs
done
report
