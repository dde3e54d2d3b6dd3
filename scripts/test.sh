#!/usr/bin/env bash
# The test command: set up what is missing, then run every test (unit, API, end to end on the
# local testbed). Extra arguments go to pytest, e.g. scripts/test.sh -k spawner
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
# the lab extension: prettier and eslint, then its Jest unit tests (labextension/src/**/__tests__)
jlpm lint:check
jlpm test
.venv/bin/python -m pytest "$@"
