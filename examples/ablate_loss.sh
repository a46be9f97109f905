#!/usr/bin/env bash
# Ablation: the loss. Contrastive (paper Eq. 4) vs MSE (Eq. 5), and RankCLIP's list-wise ranking terms:
# lambda1 (in-modal) and lambda2 (cross-modal) each over {1/32, 1/16, 1/8} with the other at 1/16,
# plus "remove the base loss" (seed plan 003); TRAIN_SEEDS training seeds each.
#   bash examples/ablate_loss.sh           # then see runs/ablate_loss/report.md and report.png
#   ARMS="contrastive mse" TRAIN_SEEDS=0 bash examples/ablate_loss.sh   # a subset of the arms
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}
TRAIN_SEEDS=${TRAIN_SEEDS:-0 1 2}
ARMS=${ARMS:-contrastive mse rank-l1 rank-l2 rank-no-base}

baseline
comps=$(comparatives template template "$PAIRS")
for s in $TRAIN_SEEDS; do
  seed=(--seed "$s")
  ! wanted contrastive || arm "loss-contrastive-s$s" "$comps" "arm=loss loss=contrastive train_seed=$s" \
    --loss contrastive "${seed[@]}"
  ! wanted mse || arm "loss-mse-s$s" "$comps" "arm=loss loss=mse train_seed=$s" --loss mse "${seed[@]}"
  if wanted rank-l1; then
    for l1 in 1/32 1/16 1/8; do
      arm "rank-l1-${l1/\//_}-s$s" "$comps" "arm=rankclip lambda1=$l1 lambda2=1/16 train_seed=$s" \
        --rank-weights "$l1,1/16" "${seed[@]}"
    done
  fi
  if wanted rank-l2; then
    for l2 in 1/32 1/8; do  # lambda2 = 1/16 with lambda1 = 1/16 is in rank-l1
      arm "rank-l2-${l2/\//_}-s$s" "$comps" "arm=rankclip lambda1=1/16 lambda2=$l2 train_seed=$s" \
        --rank-weights "1/16,$l2" "${seed[@]}"
    done
  fi
  ! wanted rank-no-base || arm "rank-no-base-s$s" "$comps" \
    "arm=rankclip lambda1=1/16 lambda2=1/16 base_loss=no train_seed=$s" \
    --rank-weights 1/16,1/16 --no-base-loss "${seed[@]}"
done
report
