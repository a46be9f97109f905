#!/usr/bin/env bash
# Ablation: RankCLIP as a pretraining objective (seed plan 003), on the shapes world or (WORLD_KIND=produce) the
# produce world. Every arm trains a base model from a seeded random init on the world's train captions with
# L_CLIP + lambda1 L_in-modal + lambda2 L_cross-modal (the ranking terms normalised as RankCLIP's published code,
# with its epoch ramp), and is scored by `pcclip eval`: zero-shot top-1/3/5 on each class set of the world
# (shapes: shape, colour, colour_shape; produce: produce, colour, size, shape, pattern), linear probe, alignment and
# uniformity (zero_shot/SET is top-1). `pcclip report` merges the seeds of an arm (mean +- standard error) into a table and a figure.
#
#   bash examples/ablate_rankclip.sh             # then see runs/ablate_rankclip/report.md and report.png
#   WORLD_KIND=produce bash examples/ablate_rankclip.sh   # runs/ablate_rankclip_produce: the same arms on the
#       produce world (26 classes; zero-shot and probe on produce, colour, size, shape, pattern)
#   TRAIN_SEEDS="0" WORLD_IMAGES=200 EPOCHS=2 BATCH=32 MODEL=pcclip-micro bash examples/ablate_rankclip.sh  # smoke
#
# Arms: CLIP (0, 0); RankCLIP (1/16, 1/16); in-modal only (1/16, 0); cross-modal only (0, 1/16); no base loss
# (1/16, 1/16 without L_CLIP); the plan's six pairs (1/32, 1/16), (1/8, 1/16), (1/16, 1/32), (1/16, 1/8),
# (1/32, 1/32), (1/8, 1/8). 11 arms x TRAIN_SEEDS.
#
# Sizes (environment): the shapes base model's recipe (pcclip-tiny, AdamW 1e-3, weight decay 0.1, cosine with
# 30 warm-up steps, batch 128) on a smaller world and fewer epochs, so 11 arms x 3 seeds fit about an hour on 2
# idle cores: WORLD_IMAGES=1000 (800 train captions) and EPOCHS=10 instead of 2000 and 20. On a GPU, raise them.
#   MODEL (pcclip-tiny)  WORLD_IMAGES (1000)  EPOCHS (10)  BATCH (128)  LR (1e-3)  TRAIN_SEEDS ("0 1 2")
#   SEEDS (2: rank-benchmark seeds in eval)   WORLD_KIND (shapes)   RUNS, PCCLIP as in common.sh
# Every step is resumable: run the script again after a kill and it continues where it stopped.
EPOCHS=${EPOCHS:-10}
BATCH=${BATCH:-128}
LR=${LR:-1e-3}
WORLD_IMAGES=${WORLD_IMAGES:-1000}
SEEDS=${SEEDS:-2}
WORLD_KIND=${WORLD_KIND:-shapes}
# Each world has its own runs folder (arms are resumed by name) and its own class sets in the report.
case $WORLD_KIND in
  produce) RUNS=${RUNS:-runs/ablate_rankclip_produce}; CLASS_SETS="produce colour size shape pattern" ;;
  *) CLASS_SETS="shape colour colour_shape" ;;
esac
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-pcclip-tiny}
TRAIN_SEEDS=${TRAIN_SEEDS:-"0 1 2"}

# pretrain NAME TAGS [train flags...]: one arm, every training seed; each run evaluated into its result.json.
pretrain() {
  local name=$1 tags=$2; shift 2
  local tag_flags=()
  for t in $tags; do tag_flags+=(--tag "$t"); done
  for seed in $TRAIN_SEEDS; do
    local dir=$RUNS/$name/seed-$seed
    mkdir -p "$dir"
    if [ ! -f "$dir/model/pcclip.json" ]; then
      if [ -d "$dir/model/checkpoints" ]; then
        "$PCCLIP" train --resume "$dir/model" --json > "$dir/train.json"
      else
        rm -rf "$dir/model"
        "$PCCLIP" train --objective caption --init random --model "$MODEL" --scope both \
          --captions "$WORLD/captions.jsonl" --split train --optimizer adamw --lr "$LR" --weight-decay 0.1 \
          --schedule cosine --warmup-steps 30 --epochs "$EPOCHS" --batch-size "$BATCH" --seed "$seed" \
          --out "$dir/model" "$@" --json > "$dir/train.json"
      fi
    fi
    [ -f "$dir/result.json" ] || "$PCCLIP" eval --model "$dir/model" --world "$WORLD" --seeds "$SEEDS" \
      "${tag_flags[@]}" --tag "seed=$seed" --out "$dir/result.json" --json > /dev/null
    echo "done: $name seed $seed" >&2
  done
}

pretrain clip "arm=clip lambda1=0 lambda2=0"
pretrain rankclip "arm=rankclip lambda1=1/16 lambda2=1/16" --rank-weights 1/16,1/16
pretrain in-modal "arm=in-modal lambda1=1/16 lambda2=0" --rank-weights 1/16,0
pretrain cross-modal "arm=cross-modal lambda1=0 lambda2=1/16" --rank-weights 0,1/16
pretrain no-base "arm=no-base lambda1=1/16 lambda2=1/16" --rank-weights 1/16,1/16 --no-base-loss
for pair in 1/32,1/16 1/8,1/16 1/16,1/32 1/16,1/8 1/32,1/32 1/8,1/8; do
  l1=${pair%,*} l2=${pair#*,}
  pretrain "grid-${l1/\//_}-${l2/\//_}" "arm=grid lambda1=$l1 lambda2=$l2" --rank-weights "$pair"
done

metrics=()
for set in $CLASS_SETS; do
  metrics+=(--metric "zero_shot/$set" --metric "zero_shot/$set/top3" --metric "zero_shot/$set/top5")
  metrics+=(--metric "linear_probe/$set")
done
metrics+=(--metric geometry/alignment --metric geometry/uniformity_image --metric geometry/uniformity_text)
report "${metrics[@]}"
echo "report: $RUNS/report.md, $RUNS/report.png" >&2
