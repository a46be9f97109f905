#!/usr/bin/env bash
# Ablation: which tower PC-CLIP finetunes: text (the paper), image, or both.
#   bash examples/ablate_scope.sh          # then see runs/ablate_scope/report.md and report.png
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}

baseline
comps=$(comparatives template template "$PAIRS")
for scope in text image both; do
  arm "scope-$scope" "$comps" "arm=scope scope=$scope" --scope "$scope"
done
report
