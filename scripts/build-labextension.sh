#!/usr/bin/env bash
# Build the JupyterLab extension (labextension/ -> intertwin_hub/labextension) with jlpm and
# jupyter-builder; skipped when the build is newer than every source.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
export PATH="$PWD/$BIN:$PATH"
out=intertwin_hub/labextension/static/style.js
# node_modules/.bin/jest: the dev tools (jest, eslint, prettier) are installed too
if [ -f "$out" ] && [ -x node_modules/.bin/jest ] && [ -z "$(find labextension package.json tsconfig.json -newer "$out" -type f | head -1)" ]; then
  echo "lab extension is up to date"; exit 0
fi
jlpm install
jlpm build:prod
test -f "$out"
