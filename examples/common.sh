# Shared by the ablate_*.sh scripts: one PC-CLIP arm = generate -> filter -> train -> eval, with public commands.
# Every step is resumable, so a killed script picks up where it stopped when run again.
#
# Settings (environment variables, with defaults that run on 2 CPU cores):
#   PCCLIP        the pcclip executable             (default: pcclip)
#   RUNS          where runs and reports go         (default: runs/<script name>)
#   WORLD_IMAGES  images in the shapes world        (default: 2000, the base model's world)
#   WORLD_KIND    shapes or produce                 (default: shapes; the comparative arms need shapes, only
#                                                    ablate_rankclip.sh, which trains from scratch, takes produce)
#   BASE          base model SPEC                   (default: shapes-clip)
#   EPOCHS, BATCH, LR                               (defaults: 1, 128, 2e-5: the demo's, for shapes-clip's
#                                                    pretrained sentence encoder; shapes-clip-scratch used 4, 256, 1e-4)
#   SEEDS         rank-benchmark seeds in eval      (default: 5)
#   TRAIN_FLAGS   extra `pcclip train` flags for every arm, e.g. "--hard-negatives swap --reversal-pairs"
#                 (give RUNS its own folder: arms are resumed by name)
#   EVAL_FLAGS    extra `pcclip eval` flags for every arm and the base, e.g. "--pairs 20" for a quick look

set -euo pipefail
PCCLIP=${PCCLIP:-pcclip}
RUNS=${RUNS:-runs/$(basename "$0" .sh)}
WORLD_IMAGES=${WORLD_IMAGES:-2000}
BASE=${BASE:-shapes-clip}
EPOCHS=${EPOCHS:-1}
BATCH=${BATCH:-128}
LR=${LR:-2e-5}
SEEDS=${SEEDS:-5}
WORLD_KIND=${WORLD_KIND:-shapes}
WORLD=$RUNS/world

case $WORLD_KIND in
  shapes|produce) ;;
  *) echo "error: WORLD_KIND must be shapes or produce, got '$WORLD_KIND'" >&2; exit 1 ;;
esac
mkdir -p "$RUNS"
"$PCCLIP" data "$WORLD_KIND" "$WORLD" --images "$WORLD_IMAGES" --seed 0 --json > /dev/null

# comparatives NAME LLM PAIRS [generate flags...]: generate (resuming) and filter comparatives of train-split pairs.
comparatives() {
  local name=$1 llm=$2 pairs=$3 dir=$RUNS/comparatives/$1
  shift 3
  mkdir -p "$dir"
  "$PCCLIP" generate --llm "$llm" --captions "$WORLD/captions-train.jsonl" --pairs "$pairs" --prompt shapes \
    --out "$dir/raw.jsonl" "$@" --json > "$dir/generate.json"
  "$PCCLIP" filter "$dir/raw.jsonl" --out "$dir/clean.jsonl" --json > "$dir/filter.json"
  echo "$dir/clean.jsonl"
}

# arm NAME COMPARATIVES TAGS [train flags...]: train one PC-CLIP model and evaluate it into NAME/result.json.
# TAGS is a space-separated list of KEY=VALUE that `pcclip report` uses as the arm's settings.
arm() {
  local name=$1 comps=$2 tags=$3; shift 3
  local dir=$RUNS/$name
  mkdir -p "$dir"
  if [ ! -f "$dir/model/pcclip.json" ]; then
    if [ -d "$dir/model/checkpoints" ]; then
      "$PCCLIP" train --resume "$dir/model" --json > "$dir/train.json"
    else
      rm -rf "$dir/model"
      "$PCCLIP" train --model "$BASE" --comparatives "$comps" --captions "$WORLD/captions.jsonl" --split train \
        --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" --out "$dir/model" ${TRAIN_FLAGS:-} "$@" --json > "$dir/train.json"
    fi
  fi
  local tag_flags=()
  for t in $tags; do tag_flags+=(--tag "$t"); done
  [ -f "$dir/result.json" ] || "$PCCLIP" eval --model "$dir/model" --world "$WORLD" --seeds "$SEEDS" \
    ${EVAL_FLAGS:-} "${tag_flags[@]}" --out "$dir/result.json" --json > /dev/null
  echo "done: $name" >&2
}

# wanted ARM: whether the space-separated ARMS (set by the script) selects ARM.
wanted() { case " ${ARMS:-} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# baseline: the base model itself, evaluated once, as the reference row of every report.
baseline() {
  mkdir -p "$RUNS/base"
  [ -f "$RUNS/base/result.json" ] || "$PCCLIP" eval --model "$BASE" --world "$WORLD" --seeds "$SEEDS" \
    ${EVAL_FLAGS:-} --tag arm=base --out "$RUNS/base/result.json" --json > /dev/null
}

report() {
  "$PCCLIP" report "$RUNS" --out "$RUNS/report.md" --plot "$RUNS/report.png" "$@"
}
