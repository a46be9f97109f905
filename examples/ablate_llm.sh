#!/usr/bin/env bash
# Ablation: which LLM writes the comparatives PC-CLIP trains on (paper §3.1 used LLaMA2-13B-chat), and whether
# filtering them helps (paper App. B). Every arm trains on exactly PAIRS comparatives of train-split pairs:
#   unfiltered: the first PAIRS records generated;
#   filtered:   the first PAIRS records that `pcclip filter` keeps (generation grows until there are enough, or
#               until GEN_LIMIT; then a "matched" arm of the same smaller size is added, see fair_comparatives).
# Each arm trains with 3 seeds; each arm's audit precision (`pcclip audit`) is a tag beside its accuracy.
# All comparatives are generated first; then every arm trains at seed 0, then at seed 1, ..., so a run stopped
# early still has whole seeds to report (and, run again, resumes).
#   bash examples/ablate_llm.sh                      # then see runs/ablate_llm/report.md and report.png
#   PAIRS=40 TRAIN_SEEDS=0 BATCH=16 EPOCHS=1 bash examples/ablate_llm.sh    # a smoke run (BATCH <= PAIRS)
# Settings: PAIRS (5000), TRAIN_SEEDS ("0 1 2"), LLMS ("template smollm2-135m-hf gemma3-270m-hf": SmolLM2 and
# Gemma read by transformers, the fastest offline path; smollm2-135m / gemma3-270m run them through llama.cpp),
# GEN_BATCH (64, items decoded together), GEN_LIMIT (4 x PAIRS: at most this many comparatives generated per
# LLM while growing its filtered arm), GEN_FLAGS (extra `pcclip generate` flags for the LLM arms, default
# "--dtype bfloat16 --max-tokens 48": bfloat16 is fast on CPUs with AMX and on GPUs; a comparative of two
# shapes is one sentence of about 20 tokens), and those of common.sh (RUNS, BASE, EPOCHS, BATCH, ...).
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-5000}
TRAIN_SEEDS=${TRAIN_SEEDS:-"0 1 2"}
LLMS=${LLMS:-"template smollm2-135m-hf gemma3-270m-hf"}
GEN_BATCH=${GEN_BATCH:-64}
GEN_LIMIT=${GEN_LIMIT:-$((PAIRS * 4))}
GEN_FLAGS=${GEN_FLAGS:-"--dtype bfloat16 --max-tokens 48"}

count() { [ -f "$1" ] && wc -l < "$1" || echo 0; }

# fair_comparatives LLM: writes DIR/unfiltered.jsonl (the first PAIRS records generated) and DIR/filtered.jsonl
# (the first PAIRS records that filtering keeps), generating more until filtering keeps PAIRS or GEN_LIMIT records
# have been generated. When the limit comes first, filtered.jsonl holds the K < PAIRS records kept and
# DIR/matched.jsonl the first K records generated, so that filtered and unfiltered still compare at equal size.
# DIR/variants lists "VARIANT PAIRS" lines for the training loop.
fair_comparatives() {
  local llm=$1 dir=$RUNS/comparatives/$1 want=$PAIRS kept
  mkdir -p "$dir"
  while :; do
    # --pairs N is a prefix of --pairs M > N with the same seed, so growing N only generates the new pairs.
    local flags=()
    # shellcheck disable=SC2206  # GEN_FLAGS is a list of words
    [ "$llm" = template ] || flags=(--batch-size "$GEN_BATCH" $GEN_FLAGS)
    "$PCCLIP" generate --llm "$llm" --captions "$WORLD/captions-train.jsonl" --pairs "$want" --prompt shapes \
      "${flags[@]}" --out "$dir/raw.jsonl" --json > "$dir/generate.json"
    "$PCCLIP" filter "$dir/raw.jsonl" --out "$dir/clean.jsonl" --json > "$dir/filter.json"
    kept=$(count "$dir/clean.jsonl")
    [ "$kept" -ge "$PAIRS" ] || [ "$want" -ge "$GEN_LIMIT" ] && break
    if [ "$kept" -eq 0 ]; then
      echo "error: $llm: filtering kept none of $want comparatives" >&2
      exit 1
    fi
    want=$(( want * PAIRS / kept + PAIRS / 10 + 1 ))  # enough, at the kept rate so far, plus a margin
    [ "$want" -le "$GEN_LIMIT" ] || want=$GEN_LIMIT
  done
  local k=$(( kept < PAIRS ? kept : PAIRS ))
  head -n "$PAIRS" "$dir/raw.jsonl" > "$dir/unfiltered.jsonl"
  head -n "$k" "$dir/clean.jsonl" > "$dir/filtered.jsonl"
  printf 'unfiltered %s\nfiltered %s\n' "$PAIRS" "$k" > "$dir/variants"
  if [ "$k" -lt "$PAIRS" ]; then
    echo "note: $llm: filtering kept $kept of $want generated (GEN_LIMIT $GEN_LIMIT); the filtered arm has $k" \
      "pairs, compared with the first $k generated (arm 'matched')" >&2
    head -n "$k" "$dir/raw.jsonl" > "$dir/matched.jsonl"
    echo "matched $k" >> "$dir/variants"
  fi
  while read -r variant _; do
    "$PCCLIP" audit "$dir/$variant.jsonl" --captions "$WORLD/captions.jsonl" --json > "$dir/audit-$variant.json"
  done < "$dir/variants"
}

precision() { python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["precision"]; print("%.3f" % p if p is not None else "na")' "$1"; }

baseline
for llm in $LLMS; do
  fair_comparatives "$llm"
done
for seed in $TRAIN_SEEDS; do
  for llm in $LLMS; do
    while read -r variant pairs; do
      comps=$RUNS/comparatives/$llm/$variant.jsonl
      prec=$(precision "$RUNS/comparatives/$llm/audit-$variant.json")
      arm "llm-$llm-$variant-s$seed" "$comps" \
        "arm=llm llm=$llm filtered=$variant pairs=$pairs audit_precision=$prec train_seed=$seed" --seed "$seed"
    done < "$RUNS/comparatives/$llm/variants"
  done
done
report
