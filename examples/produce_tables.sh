#!/usr/bin/env bash
# The paper's Table 2 / 3 / 6, descriptions vs template and the difference tasks on the produce world, for one
# model, with the oracle's class knowledge (LLM=template) or an LLM's (LLM=gemma-3-270m, smollm2-..., slow on CPU).
#   examples/produce_tables.sh MODEL OUT [WORLD]
# WORLD defaults to the world produce-clip trained on ($PCCLIP_HOME/worlds/produce-v1-n2000-seed0).
set -euo pipefail
MODEL=${1:?model SPEC}; OUT=${2:?output folder}
WORLD=${3:-${PCCLIP_HOME:-$HOME/.cache/pcclip}/worlds/produce-v1-n2000-seed0}
LLM=${LLM:-template}
PC="${PCCLIP:-pcclip}"
mkdir -p "$OUT"
DS="$WORLD/classes/produce.jsonl"
python -c "from pcclip_cli.data.produce import CLASSES; print('\n'.join(c.name for c in CLASSES))" > "$OUT/classes.txt"
# Table 2: zero-shot top-1 / top-5; the confused pairs go to the LLM.
$PC classify --dataset "$DS" -m "$MODEL" --top-k 3 --confused-out "$OUT/confused.jsonl" --json > "$OUT/zero-shot.json"
# Class knowledge: comparatives for the confused pairs (both directions) and 4 descriptions per class.
$PC generate --llm "$LLM" --kind classes --classes "$OUT/confused.jsonl" --out "$OUT/cmp-$LLM.jsonl" >&2
$PC generate --llm "$LLM" --kind descriptions --classes "$OUT/classes.txt" --n 4 --out "$OUT/desc-$LLM.jsonl" >&2
$PC audit --classes "$OUT/cmp-$LLM.jsonl" --captions "$WORLD/captions.jsonl" --vocabulary "$WORLD/vocabulary.toml" \
    --json > "$OUT/audit-cmp-$LLM.json"
$PC audit --classes "$OUT/desc-$LLM.jsonl" --captions "$WORLD/captions.jsonl" --vocabulary "$WORLD/vocabulary.toml" \
    --json > "$OUT/audit-desc-$LLM.json"
# Table 3: comparative prompting at the paper's alpha (0.9) and a sweep.
for a in 0.5 0.7 0.8 0.9; do
  $PC classify --dataset "$DS" -m "$MODEL" --comparative "$OUT/cmp-$LLM.jsonl" --alpha $a --json \
      > "$OUT/comparative-$LLM-a$a.json"
done
# Descriptions (CuPL-style ensemble) against the template.
$PC classify --dataset "$DS" -m "$MODEL" --descriptions "$OUT/desc-$LLM.jsonl" --json > "$OUT/descriptions-$LLM.json"
# Table 6: distance on the confused pairs.
$PC distance --comparatives "$OUT/cmp-$LLM.jsonl" -m "$MODEL" --dataset "$DS" --json > "$OUT/distance-$LLM.json"
# The world's difference tasks (held-out paraphrases reported beside the main sentence).
for t in size colour pattern; do
  $PC rank -m "$MODEL" --task "$WORLD/tasks/$t.toml" --seeds 5 --pairs 100 --json > "$OUT/task-$t.json"
done
echo "wrote $OUT" >&2
