#!/usr/bin/env bash
# Ablation: which tower PC-CLIP finetunes: text (the paper), image, or both; TRAIN_SEEDS training seeds each.
#   bash examples/ablate_scope.sh          # then see runs/ablate_scope/report.md and report.png
#   SCOPES="text both" TRAIN_SEEDS=0 bash examples/ablate_scope.sh   # a subset
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}
TRAIN_SEEDS=${TRAIN_SEEDS:-0 1 2}
SCOPES=${SCOPES:-text image both}

baseline
comps=$(comparatives template template "$PAIRS")
for s in $TRAIN_SEEDS; do
  for scope in $SCOPES; do
    arm "scope-$scope-s$s" "$comps" "arm=scope scope=$scope train_seed=$s" --scope "$scope" --seed "$s"
  done
done
report
