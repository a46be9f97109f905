#!/usr/bin/env bash
# EX2 ("If CLIP Could Talk") on one world, for one or more CLIP models (the VLMs), with public commands only:
#   1. `pcclip align` (default settings) aligns the LLM to each model's preferences on the training split;
#   2. the aligned and the unaligned LLM write N descriptions per class (same prompt, seed and sampling); the
#      unaligned LLM writes BEST_OF, of which the first N are "unaligned" and the N its model prefers on the
#      training split are "best-of-n" (`classify --select-descriptions`);
#   3. the held-out test images are classified with the generic template and the three sets of descriptions;
#   4. `pcclip analyse-descriptions` compares what the unaligned and aligned descriptions say (Table 2, and the
#      attribute frequencies of Figure 4, all models side by side), visual statements checked against the world.
# RUNS/report.md gathers the numbers and wall times. Every step is resumable: run the script again after a kill.
#   bash examples/ex2.sh                                           # the shapes world, shapes-clip
#   WORLD=$PCCLIP_HOME/worlds/produce-v1-n2000-seed0 MODELS="base=produce-clip pc=runs/pc/model" bash examples/ex2.sh
# Settings: MODELS (space-separated SPECs or NAME=SPEC; default shapes-clip), WORLD (a world directory; default: a
# 2000-image shapes world made in RUNS/world), CLASSES (its class manifest: classes/produce.jsonl where the world has
# one, else classes/colour_shape.jsonl), LABEL (the attribute naming each image's class: produce or colour_shape),
# PROMPT (descriptions prompt: shapes-descriptions on a shapes world, descriptions otherwise), LLM
# (smollm2-135m-hf), N (25), BEST_OF (50), SEED (0), ALIGN_FLAGS (extra `pcclip align` flags, default none: the
# defaults are the point), GEN_FLAGS ("--batch-size 50"), PCCLIP (pcclip), RUNS (runs/ex2).
# On a CPU shared with other jobs, OMP_NUM_THREADS=1 is several times faster than torch's spinning threads (SmolLM2
# generation measured 33 tokens/s against 8 at load 5 on 2 cores).
set -euo pipefail
PCCLIP=${PCCLIP:-pcclip}
RUNS=${RUNS:-runs/ex2}
MODELS=${MODELS:-shapes-clip}
LLM=${LLM:-smollm2-135m-hf}
N=${N:-25}
BEST_OF=${BEST_OF:-50}
SEED=${SEED:-0}
ALIGN_FLAGS=${ALIGN_FLAGS:-}
GEN_FLAGS=${GEN_FLAGS:-"--batch-size 50"}
mkdir -p "$RUNS"
if [ -z "${WORLD:-}" ]; then
  WORLD=$RUNS/world
  "$PCCLIP" data shapes "$WORLD" --images 2000 --seed 0 --json > /dev/null
fi
if [ -z "${CLASSES:-}" ]; then
  if [ -f "$WORLD/classes/produce.jsonl" ]; then CLASSES=$WORLD/classes/produce.jsonl; else CLASSES=$WORLD/classes/colour_shape.jsonl; fi
fi
case "$CLASSES" in *produce.jsonl) DEFAULT_LABEL=produce; DEFAULT_PROMPT=descriptions ;;
                   *) DEFAULT_LABEL=colour_shape; DEFAULT_PROMPT=shapes-descriptions ;; esac
LABEL=${LABEL:-$DEFAULT_LABEL}
PROMPT=${PROMPT:-$DEFAULT_PROMPT}
TRUTH=(--captions "$WORLD/captions.jsonl" --label "$LABEL")
[ -f "$WORLD/vocabulary.toml" ] && TRUTH+=(--vocabulary "$WORLD/vocabulary.toml")
TIMES=$RUNS/times.tsv
touch "$TIMES"

# timed NAME CMD...: run CMD unless NAME is already in times.tsv; record its wall time in seconds.
timed() {
  local name=$1; shift
  grep -q "^$name	" "$TIMES" && return 0
  local t0=$SECONDS
  "$@"
  printf '%s\t%s\n' "$name" "$((SECONDS - t0))" >> "$TIMES"
}
# to FILE CMD...: CMD's stdout into FILE, atomically (a killed step leaves no half-written JSON).
to() { local f=$1; shift; "$@" > "$f.tmp" && mv "$f.tmp" "$f"; }

python3 -c 'import json, sys
seen = {}
for line in open(sys.argv[1], encoding="utf-8-sig"):
    if line.strip():
        seen.setdefault(json.loads(line)["label"], None)
print("\n".join(seen))' "$CLASSES" > "$RUNS/classes.txt"

# The unaligned LLM's descriptions are the same for every model: BEST_OF per class, the first N of them "unaligned".
# Sampled as align samples (its temperature and length, read from the first model's run once it exists).
sampling() { python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); print(c["temperature"], c["max_new_tokens"])' "$1"; }

for entry in $MODELS; do
  name=${entry%%=*}; spec=${entry#*=}
  [ "$name" = "$entry" ] && name=$(echo "$spec" | tr '/:' '__')
  dir=$RUNS/$name
  mkdir -p "$dir"
  echo "== $name ($spec): align" >&2
  # shellcheck disable=SC2086  # ALIGN_FLAGS is a list of words
  timed "$name/align" to "$dir/align.json" "$PCCLIP" align --dataset "$CLASSES" --prompt "$PROMPT" --llm "$LLM" \
    --model "$spec" --seed "$SEED" --out "$dir/align" $ALIGN_FLAGS --json
  read -r temp tokens < <(sampling "$dir/align/config.json")
  gen=(--kind descriptions --classes "$RUNS/classes.txt" --prompt "$PROMPT" --temperature "$temp" --max-tokens "$tokens"
       --seed "$SEED")
  echo "== unaligned descriptions ($BEST_OF per class)" >&2
  # shellcheck disable=SC2086  # GEN_FLAGS is a list of words
  timed "unaligned/generate" to "$RUNS/unaligned-pool.json" "$PCCLIP" generate --llm "$LLM" "${gen[@]}" --n "$BEST_OF" \
    --out "$RUNS/unaligned-pool.jsonl" $GEN_FLAGS --json
  python3 -c 'import json, sys
n = int(sys.argv[2])
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip() and int(json.loads(line)["key"].rsplit("#", 1)[1]) < n:
        sys.stdout.write(line)' "$RUNS/unaligned-pool.jsonl" "$N" > "$RUNS/unaligned.jsonl"
  echo "== $name: aligned descriptions ($N per class)" >&2
  # shellcheck disable=SC2086
  timed "$name/generate" to "$dir/aligned-generate.json" "$PCCLIP" generate --llm "$dir/align/model" "${gen[@]}" \
    --n "$N" --out "$dir/aligned.jsonl" $GEN_FLAGS --json
  echo "== $name: classify the test images" >&2
  cls=("$PCCLIP" classify --dataset "$CLASSES" --model "$spec" --split test --json)
  timed "$name/classify-template" to "$dir/classify-template.json" "${cls[@]}"
  timed "$name/classify-unaligned" to "$dir/classify-unaligned.json" "${cls[@]}" --descriptions "$RUNS/unaligned.jsonl"
  timed "$name/classify-aligned" to "$dir/classify-aligned.json" "${cls[@]}" --descriptions "$dir/aligned.jsonl"
  timed "$name/classify-best-of-n" to "$dir/classify-best-of-n.json" "${cls[@]}" \
    --descriptions "$RUNS/unaligned-pool.jsonl" --select-descriptions "$N" --score-split train
  echo "== $name: analyse the descriptions" >&2
  timed "$name/analyse" to "$dir/analysis.json" "$PCCLIP" analyse-descriptions "unaligned=$RUNS/unaligned.jsonl" \
    "aligned=$dir/aligned.jsonl" "${TRUTH[@]}" --records "$dir/verdicts.jsonl" --plot "$dir/attributes.png" --json
done

# All models side by side: the unaligned LLM, then each model's aligned LLM.
sources=("unaligned=$RUNS/unaligned.jsonl")
for entry in $MODELS; do
  name=${entry%%=*}; spec=${entry#*=}
  [ "$name" = "$entry" ] && name=$(echo "$spec" | tr '/:' '__')
  sources+=("aligned-$name=$RUNS/$name/aligned.jsonl")
done
rm -f "$RUNS/analysis.json"
to "$RUNS/analysis.json" "$PCCLIP" analyse-descriptions "${sources[@]}" "${TRUTH[@]}" --plot "$RUNS/attributes.png" --json

python3 - "$RUNS" "$MODELS" "$WORLD" "$CLASSES" "$LLM" "$N" "$BEST_OF" <<'EOF'
import json, sys
from pathlib import Path

runs, models, world, classes, llm, n, best_of = sys.argv[1:]
runs = Path(runs)
times = dict(line.split("\t") for line in (runs / "times.tsv").read_text().splitlines() if line.strip())
pct = lambda x: "-" if x is None else f"{100 * x:.1f}"
load = lambda p: json.loads(Path(p).read_text())
out = [f"# EX2 on {world}", "", f"Classes: `{classes}`; LLM `{llm}`; {n} descriptions per class; best-of-n keeps "
       f"{n} of {best_of}. Accuracy on the test split; the reward on the training split.", ""]
out += ["| model | align steps | reward first → last | same-concept gain | held-out reward aligned / unaligned |"
        " align min | template % | unaligned % | aligned % | best-of-n % |", "|" + "---|" * 10]
num = lambda x: "-" if x is None else f"{x:.4f}"
for entry in models.split():
    name, _, spec = entry.partition("=")
    if not spec:
        name, spec = entry.replace("/", "_").replace(":", "_"), entry
    d = runs / name
    a = load(d / "align.json")
    h = a.get("held_out") or {}
    acc = lambda f: load(d / f"classify-{f}.json")
    t = acc("template")["zero_shot"]["accuracy"]
    u = acc("unaligned")["descriptions"]["accuracy"]
    al = acc("aligned")["descriptions"]["accuracy"]
    b = acc("best-of-n")["selection"]["selected_accuracy"]
    gain = a.get("reward_gain_same_concepts")
    out.append(f"| {name} (`{spec}`) | {a['steps']} | {num(a.get('reward_first'))} → {num(a.get('reward_last'))} | "
               f"{num(gain)} ({a.get('concepts_seen_twice', 0)} concepts) | {num(h.get('aligned'))} / "
               f"{num(h.get('unaligned'))} | {int(times.get(name + '/align', 0)) / 60:.1f} | "
               f"{pct(t)} | {pct(u)} | {pct(al)} | {pct(b)} |")
an = load(runs / "analysis.json")
out += ["", "## What the descriptions say (EX2's Table 2)", "", "| source | descriptions | informative % | "
        "non-visual % of informative | visual precision % |", "|---|---|---|---|---|"]
for s in an["sources"]:
    out.append(f"| {s['name']} | {s['descriptions']} | {pct(s['informative_share'])} | {pct(s['non_visual_share'])} | "
               f"{pct(s['visual_precision'])} |")
cats = an["categories"]["visual"] + an["categories"]["non_visual"]
out += ["", "## Attributes named (% of informative descriptions; Figure 4: attributes.png)", "",
        "| attribute | " + " | ".join(s["name"] for s in an["sources"]) + " |",
        "|---|" + "---|" * len(an["sources"])]
for c in cats:
    out.append(f"| {c} | " + " | ".join(pct(s["attribute_shares"][c]) for s in an["sources"]) + " |")
out += ["", "## Wall times (s)", ""] + [f"- {k}: {v}" for k, v in times.items()]
(runs / "report.md").write_text("\n".join(out) + "\n")
print(f"wrote {runs / 'report.md'}", file=sys.stderr)
EOF
