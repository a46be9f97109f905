#!/usr/bin/env bash
# Ablation: which tower PC-CLIP finetunes: text (the paper), image, or both; TRAIN_SEEDS training seeds each.
# Every arm uses LR, except a SCOPES entry written SCOPE@LR: the image tower, trained from scratch at 1e-3 for the
# base, barely moves at the text tower's 2e-5, so image@1e-4 asks whether it is the lr or the scope.
#   bash examples/ablate_scope.sh          # then see runs/ablate_scope/report.md and report.png
#   SCOPES="text both" TRAIN_SEEDS=0 bash examples/ablate_scope.sh   # a subset
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}
TRAIN_SEEDS=${TRAIN_SEEDS:-0 1 2}
SCOPES=${SCOPES:-text image both image@1e-4}

baseline
comps=$(comparatives template template "$PAIRS")
for s in $TRAIN_SEEDS; do
  for entry in $SCOPES; do
    scope=${entry%@*} name=${entry%@*} lr_flags=()
    if [ "$entry" != "$scope" ]; then
      name=$scope-lr${entry#*@} lr_flags=(--lr "${entry#*@}")  # a later --lr wins over common.sh's
    fi
    arm "scope-$name-s$s" "$comps" "arm=scope scope=$scope train_seed=$s" --scope "$scope" --seed "$s" \
      "${lr_flags[@]}"
  done
done
report
