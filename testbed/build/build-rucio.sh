#!/usr/bin/env bash
# A real Rucio server (and its daemons) for the testbed, from PyPI, in its own venv cached by
# version under $INTERTWIN_CACHE. Rucio pins many packages (Flask, SQLAlchemy, requests...), so
# it does not go into the project's .venv, which only needs rucio-clients.
set -euo pipefail
RUCIO_VERSION=${RUCIO_VERSION:-41.5.1}
CACHE=${INTERTWIN_CACHE:-$HOME/.cache/intertwin-hub}
OUT="$CACHE/rucio/$RUCIO_VERSION"
PY=${PYTHON311:-$(command -v python3.11 || command -v python3)}

# .complete: the venv with Rucio; .postgresql: its PostgreSQL driver (psycopg, Rucio's own
# `postgresql` extra), a marker of its own so venvs built before it get the driver added
# instead of being rebuilt. Each marker is written last: a half-done step is redone
done_already() { [ -f "$OUT/.complete" ] && [ -f "$OUT/.postgresql" ]; }
if done_already; then
  echo "Rucio $RUCIO_VERSION: cached in $OUT"; exit 0
fi
# concurrent setups (two test sessions) wait for one build instead of deleting each other's
mkdir -p "$CACHE/rucio"
exec 9>"$CACHE/rucio/.build.lock"
flock 9
if done_already; then
  echo "Rucio $RUCIO_VERSION: cached in $OUT"; exit 0
fi
if [ ! -f "$OUT/.complete" ]; then
  rm -rf "$OUT"; mkdir -p "$OUT"
  echo "== installing Rucio $RUCIO_VERSION into $OUT/venv (~1-2 min)"
  "$PY" -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install -q --upgrade pip
  "$OUT/venv/bin/pip" install -q "rucio[postgresql]==$RUCIO_VERSION"
  "$OUT/venv/bin/python" -c "import importlib.util as u; assert u.find_spec('rucio.web.rest.flaskapi.v1.main') and u.find_spec('rucio.daemons.conveyor.submitter')"
  touch "$OUT/.complete"
else
  echo "== adding the PostgreSQL driver to $OUT/venv"
  "$OUT/venv/bin/pip" install -q "rucio[postgresql]==$RUCIO_VERSION"
fi
"$OUT/venv/bin/python" -c "import psycopg, psycopg_pool; psycopg.pq.version()"
touch "$OUT/.postgresql"
echo "Rucio $RUCIO_VERSION: installed in $OUT"
