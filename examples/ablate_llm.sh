#!/usr/bin/env bash
# Ablation: which LLM writes the comparatives PC-CLIP trains on (paper §3.1 used LLaMA2-13B-chat).
# Every arm gets the same number of train-split pairs, so only the writer differs.
#   bash examples/ablate_llm.sh            # then see runs/ablate_llm/report.md and report.png
#   PAIRS=300 bash examples/ablate_llm.sh
# A real LLM on 2 CPU cores writes about one comparative a second, so the arms are small; the batch and the
# epochs suit a few hundred pairs (override with BATCH / EPOCHS).
BATCH=${BATCH:-64}
EPOCHS=${EPOCHS:-8}
source "$(dirname "$0")/common.sh"
PAIRS=${PAIRS:-300}

baseline
for llm in template smollm2-135m gemma3-270m; do
  comps=$(comparatives "$llm" "$llm" "$PAIRS")
  arm "llm-$llm" "$comps" "arm=llm llm=$llm pairs=$PAIRS"
done
# The oracle with plenty of data, for scale.
comps=$(comparatives template-20k template 20000)
arm llm-template-20k "$comps" "arm=llm llm=template pairs=20000" --batch-size 256 --epochs 4

# On a GPU machine with hub access (and OPENAI_API_KEY for gpt-4), add the paper's writers:
# for llm in llama2-13b gpt-4; do
#   comps=$(comparatives "$llm" "$llm" "$PAIRS")
#   arm "llm-$llm" "$comps" "arm=llm llm=$llm pairs=$PAIRS"
# done
report
