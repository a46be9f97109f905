#!/usr/bin/env bash
# The paper's tables on the produce world, base vs PC-CLIP: PC-CLIP trained on image-pair comparatives written by
# the oracle (LLM=template) and by Gemma 3 270M, TRAIN_SEEDS training seeds each; every model evaluated with the
# class knowledge (descriptions, class comparatives) of each CLASS_LLMS writer. Resumable: rerun to continue.
#   bash examples/produce_pcclip.sh          # then runs/produce_pcclip/report.md
# Settings fixed before the first PC-CLIP result: the demo's PC-CLIP recipe (text scope, 1 epoch, batch 128,
# lr 2e-5), the world's filter rules, 3000 oracle pairs and 1500 Gemma pairs (Gemma writes about 1 pair/s on a busy
# 2-core machine; the kept counts are reported). 3 epochs were planned first and dropped, unseen, for time.
set -euo pipefail
PC=${PCCLIP:-pcclip}
RUNS=${RUNS:-runs/produce_pcclip}
BASE=${BASE:-produce-clip}
WORLD=${WORLD:-${PCCLIP_HOME:-$HOME/.cache/pcclip}/worlds/produce-v1-n2000-seed0}
ORACLE_PAIRS=${ORACLE_PAIRS:-3000}
GEMMA_PAIRS=${GEMMA_PAIRS:-1500}
EPOCHS=${EPOCHS:-1}
TRAIN_SEEDS=${TRAIN_SEEDS:-0 1 2}
PAIR_LLMS=${PAIR_LLMS:-template gemma3-270m}
CLASS_LLMS=${CLASS_LLMS:-template gemma3-270m smollm2-135m}
ALPHAS=${ALPHAS:-0.5 0.7 0.8 0.9}
TASK_SEEDS=${TASK_SEEDS:-5}
# An arm of extra `train` flags under its own name, e.g. the order-aware recipe picked on the shapes world:
#   ARM=swap-rev TRAIN_FLAGS="--hard-negatives swap --reversal-pairs" PAIR_LLMS=template bash examples/produce_pcclip.sh
ARM=${ARM:-}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
DS="$WORLD/classes/produce.jsonl"
mkdir -p "$RUNS/knowledge"
# The base model (and its world) are trained on first use; `pcclip models` only lists, so ask the library.
[ "$BASE" != produce-clip ] || python -c "from pcclip_cli.training.shapes_recipe import ensure_shapes_model
ensure_shapes_model('produce-clip')"
python -c "from pcclip_cli.data.produce import CLASSES; print('\n'.join(c.name for c in CLASSES))" \
  > "$RUNS/knowledge/classes.txt"

# Class knowledge, once per writer: 4 descriptions per class and a comparative for every ordered class pair
# (each model then uses the ones for its own most confused pairs), audited against the world's images.
for llm in $CLASS_LLMS; do
  k=$RUNS/knowledge/$llm
  mkdir -p "$k"
  temp=(); [ "$llm" = template ] || temp=(--temperature 0.7)  # 4 different descriptions, not 4 greedy copies
  "$PC" generate --llm "$llm" --kind descriptions --classes "$RUNS/knowledge/classes.txt" --n 4 "${temp[@]}" \
    --out "$k/desc-raw.jsonl" --json > "$k/generate-desc.json"
  "$PC" generate --llm "$llm" --kind classes --classes "$RUNS/knowledge/classes.txt" \
    --out "$k/cmp-raw.jsonl" --json > "$k/generate-cmp.json"
  for kind in desc cmp; do
    "$PC" filter "$k/$kind-raw.jsonl" --rules "$WORLD/filter-classes.toml" --out "$k/$kind.jsonl" \
      --json > "$k/filter-$kind.json"
    "$PC" audit --classes "$k/$kind.jsonl" --captions "$WORLD/captions.jsonl" --vocabulary "$WORLD/vocabulary.toml" \
      --json > "$k/audit-$kind.json"
  done
done

# evaluate NAME MODEL: Table 2 / 3 / 6, descriptions and the difference tasks for one model.
evaluate() {
  local name=$1 model=$2 e=$RUNS/eval/$1 llm k a t
  mkdir -p "$e"
  [ -f "$e/zero-shot.json" ] || "$PC" classify --dataset "$DS" -m "$model" --top-k 3 \
    --confused-out "$e/confused.jsonl" --json > "$e/zero-shot.json"
  for llm in $CLASS_LLMS; do
    k=$RUNS/knowledge/$llm
    python - "$e/confused.jsonl" "$k/cmp.jsonl" "$e/cmp-$llm.jsonl" <<'EOF'
import json, sys
pairs = {frozenset((r["first"], r["second"])) for r in map(json.loads, open(sys.argv[1]))}
kept = [line for line in open(sys.argv[2]) if frozenset((json.loads(line)["first"], json.loads(line)["second"])) in pairs]
open(sys.argv[3], "w").writelines(kept)
EOF
    if [ -s "$e/cmp-$llm.jsonl" ]; then
      for a in $ALPHAS; do
        [ -f "$e/comparative-$llm-a$a.json" ] || "$PC" classify --dataset "$DS" -m "$model" \
          --comparative "$e/cmp-$llm.jsonl" --alpha "$a" --json > "$e/comparative-$llm-a$a.json"
      done
    fi
    [ -f "$e/descriptions-$llm.json" ] || "$PC" classify --dataset "$DS" -m "$model" \
      --descriptions "$k/desc.jsonl" --json > "$e/descriptions-$llm.json"
  done
  [ -f "$e/distance.json" ] || "$PC" distance --comparatives "$e/cmp-template.jsonl" -m "$model" --dataset "$DS" \
    --json > "$e/distance.json"
  for t in size colour pattern; do
    [ -f "$e/task-$t.json" ] || "$PC" rank -m "$model" --task "$WORLD/tasks/$t.toml" --seeds "$TASK_SEEDS" \
      --pairs 100 --json > "$e/task-$t.json"
  done
  echo "evaluated: $name" >&2
}

evaluate base "$BASE"

# Per pair writer: training comparatives (image pairs of the training split, filtered by the world's rules), then
# PC-CLIP for every training seed, each evaluated as the base was.
for llm in $PAIR_LLMS; do
  p=$RUNS/pairs/$llm
  mkdir -p "$p" "$RUNS/train"
  n=$ORACLE_PAIRS; [ "$llm" = template ] || n=$GEMMA_PAIRS
  flags=(); [ "$llm" = template ] || flags=(${LLM_FLAGS:-})  # e.g. LLM_FLAGS="--threads 1" on a busy machine
  "$PC" generate --llm "$llm" --captions "$WORLD/captions-train.jsonl" --pairs "$n" --out "$p/raw.jsonl" \
    "${flags[@]}" --json > "$p/generate.json"
  "$PC" filter "$p/raw.jsonl" --rules "$WORLD/filter-pairs.toml" --out "$p/clean.jsonl" --json > "$p/filter.json"
  for s in $TRAIN_SEEDS; do
    run_name=$llm${ARM:++$ARM}-s$s
    m=$RUNS/train/$run_name
    if [ ! -f "$m/pcclip.json" ]; then
      if [ -d "$m/checkpoints" ]; then
        "$PC" train --resume "$m" --json > "$RUNS/train/$run_name.json"
      else
        "$PC" train --model "$BASE" --comparatives "$p/clean.jsonl" --captions "$WORLD/captions.jsonl" \
          --split train --scope text --epochs "$EPOCHS" --batch-size 128 --lr 2e-5 --seed "$s" --out "$m" \
          $TRAIN_FLAGS --json > "$RUNS/train/$run_name.json"
      fi
    fi
    evaluate "pc-$run_name" "$m"
  done
done
python "$(dirname "$0")/produce_report.py" "$RUNS" > "$RUNS/report.md"
echo "wrote $RUNS/report.md" >&2
