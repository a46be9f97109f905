#!/usr/bin/env bash
# Ablation: which LLM writes the comparatives PC-CLIP trains on (paper §3.1 used LLaMA2-13B-chat), and whether
# filtering them helps (paper App. B). Every arm trains on exactly PAIRS comparatives of train-split pairs:
#   unfiltered: the first PAIRS records generated;
#   filtered:   the first PAIRS records that `pcclip filter` keeps (generation grows until there are enough).
# Each arm trains with 3 seeds; each arm's audit precision (`pcclip audit`) is a tag beside its accuracy.
# All comparatives are generated first; then every arm trains at seed 0, then at seed 1, ..., so a run stopped
# early still has whole seeds to report (and, run again, resumes).
#   bash examples/ablate_llm.sh                      # then see runs/ablate_llm/report.md and report.png
#   PAIRS=40 TRAIN_SEEDS=0 BATCH=16 EPOCHS=1 bash examples/ablate_llm.sh    # a smoke run (BATCH <= PAIRS)
# Settings: PAIRS (5000), TRAIN_SEEDS ("0 1 2"), LLMS ("template smollm2-135m-hf gemma3-270m-hf": SmolLM2 and
# Gemma read by transformers, the fastest offline path; smollm2-135m / gemma3-270m run them through llama.cpp),
# GEN_BATCH (64, items decoded together), GEN_FLAGS (extra `pcclip generate` flags for the LLM arms, default
# "--dtype bfloat16 --max-tokens 48": bfloat16 is fast on CPUs with AMX and on GPUs; a comparative of two
# shapes is one sentence of about 20 tokens), and those of common.sh (RUNS, BASE, EPOCHS, BATCH, ...).
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}
TRAIN_SEEDS=${TRAIN_SEEDS:-"0 1 2"}
LLMS=${LLMS:-"template smollm2-135m-hf gemma3-270m-hf"}
GEN_BATCH=${GEN_BATCH:-64}
GEN_FLAGS=${GEN_FLAGS:-"--dtype bfloat16 --max-tokens 48"}

count() { [ -f "$1" ] && wc -l < "$1" || echo 0; }

# fair_comparatives LLM: writes DIR/unfiltered.jsonl and DIR/filtered.jsonl of exactly PAIRS records each.
fair_comparatives() {
  local llm=$1 dir=$RUNS/comparatives/$1 want=$PAIRS
  mkdir -p "$dir"
  while :; do
    # --pairs N is a prefix of --pairs M > N with the same seed, so growing N only generates the new pairs.
    local flags=()
    # shellcheck disable=SC2206  # GEN_FLAGS is a list of words
    [ "$llm" = template ] || flags=(--batch-size "$GEN_BATCH" $GEN_FLAGS)
    "$PCCLIP" generate --llm "$llm" --captions "$WORLD/captions-train.jsonl" --pairs "$want" --prompt shapes \
      "${flags[@]}" --out "$dir/raw.jsonl" --json > "$dir/generate.json"
    "$PCCLIP" filter "$dir/raw.jsonl" --out "$dir/clean.jsonl" --json > "$dir/filter.json"
    local kept
    kept=$(count "$dir/clean.jsonl")
    [ "$kept" -ge "$PAIRS" ] && break
    if [ "$kept" -eq 0 ] || [ "$want" -ge $((PAIRS * 20)) ]; then
      echo "error: $llm: filtering kept $kept of $want comparatives; cannot reach $PAIRS" >&2
      exit 1
    fi
    want=$(( want * PAIRS / kept + PAIRS / 10 + 1 ))  # enough, at the kept rate so far, plus a margin
  done
  head -n "$PAIRS" "$dir/raw.jsonl" > "$dir/unfiltered.jsonl"
  head -n "$PAIRS" "$dir/clean.jsonl" > "$dir/filtered.jsonl"
  for variant in unfiltered filtered; do
    "$PCCLIP" audit "$dir/$variant.jsonl" --captions "$WORLD/captions.jsonl" --json > "$dir/audit-$variant.json"
  done
}

precision() { python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["precision"]; print("%.3f" % p if p is not None else "na")' "$1"; }

baseline
for llm in $LLMS; do
  fair_comparatives "$llm"
done
for seed in $TRAIN_SEEDS; do
  for llm in $LLMS; do
    for variant in unfiltered filtered; do
      comps=$RUNS/comparatives/$llm/$variant.jsonl
      prec=$(precision "$RUNS/comparatives/$llm/audit-$variant.json")
      arm "llm-$llm-$variant-s$seed" "$comps" \
        "arm=llm llm=$llm filtered=$variant pairs=$PAIRS audit_precision=$prec train_seed=$seed" --seed "$seed"
    done
  done
done
report
