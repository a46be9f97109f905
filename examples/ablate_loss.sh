#!/usr/bin/env bash
# Ablation: the loss. Contrastive (paper Eq. 4) vs MSE (Eq. 5), and RankCLIP's list-wise ranking terms:
# lambda1 (in-modal) and lambda2 (cross-modal) each over {1/32, 1/16, 1/8} with the other at 1/16,
# plus "remove the base loss" (seed plan 003).
#   bash examples/ablate_loss.sh           # then see runs/ablate_loss/report.md and report.png
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}

baseline
comps=$(comparatives template template "$PAIRS")
arm loss-contrastive "$comps" "arm=loss loss=contrastive" --loss contrastive
arm loss-mse "$comps" "arm=loss loss=mse" --loss mse
for l1 in 1/32 1/16 1/8; do
  arm "rank-l1-${l1/\//_}" "$comps" "arm=rankclip lambda1=$l1 lambda2=1/16" --rank-weights "$l1,1/16"
done
for l2 in 1/32 1/8; do  # lambda2 = 1/16 with lambda1 = 1/16 is already above
  arm "rank-l2-${l2/\//_}" "$comps" "arm=rankclip lambda1=1/16 lambda2=$l2" --rank-weights "1/16,$l2"
done
arm rank-no-base "$comps" "arm=rankclip lambda1=1/16 lambda2=1/16 base_loss=no" --rank-weights 1/16,1/16 --no-base-loss
report
