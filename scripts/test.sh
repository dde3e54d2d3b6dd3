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
# the same spawner under the chart's JupyterHub 5.5 (not when arguments pick tests): its unit
# tests, a spawn through a real JupyterHub 5 hub and a refusal's sentence from that hub's API
if [ $# -eq 0 ]; then
  .venv-jupyterhub5/bin/python -m pytest tests/intertwin_hub/spawner \
    tests/testbed/test_hub.py::test_user_spawns_jupyterlab_on_vega_via_rest_api \
    tests/testbed/test_spawner.py::test_non_member_is_refused_vega_through_the_api
fi
