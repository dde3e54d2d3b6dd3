#!/usr/bin/env bash
# Set up everything the demo and the tests need on a fresh machine; a no-op when done.
#   Debian packages, the Go-built control plane and interLink, the Rucio server's venv and
#   Keycloak (cached in ~/.cache/intertwin-hub), the Python environment (.venv),
#   configurable-http-proxy, the lab extension.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${INTERTWIN_CACHE:-$HOME/.cache/intertwin-hub}
export INTERTWIN_CACHE=$CACHE
step() { printf '\n== %s\n' "$*"; }

# What this script cannot install by itself: stop now with a sentence naming it, rather than
# fail deep inside a build.
missing=()
if [ ! -x .venv/bin/python ]; then
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    missing+=("Python 3.11 or newer as python3 (found: $(python3 --version 2>&1 || echo none))")
  elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=("Python's venv module (Debian: apt-get install python3-venv)")
  fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=("Node.js 18 or newer with npm, for the lab extension build, the browser tests and configurable-http-proxy (Debian: apt-get install nodejs npm)")
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)'; then
  missing+=("Node.js 18 or newer (found $(node --version)) (https://nodejs.org)")
fi
for b in testbed/build/build-k8s.sh testbed/build/build-interlink.sh; do
  if ! msg=$("$b" --check 2>&1 >/dev/null); then missing+=("$msg"); break; fi
done
if ! msg=$(testbed/build/build-keycloak.sh --check 2>&1 >/dev/null); then missing+=("$msg"); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/setup.sh cannot set up this machine; please install first:" >&2
  printf ' - %s\n' "${missing[@]}" >&2
  exit 1
fi

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v chromium >/dev/null || need_apt+=(chromium)
# Rucio on PostgreSQL (INTERTWIN_RUCIO_DB=postgresql): the testbed runs its own server binaries
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_apt+=(postgresql)
# the optional real Slurm queue of the Slurm sites (testbed up --slurm) and its tests
command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || need_apt+=(slurm-wlm)
# and its accounting (sacct): slurmdbd on a MariaDB server of the run; the server and client
# packages only, without mariadb-server's system service
command -v slurmdbd >/dev/null || [ -x /usr/sbin/slurmdbd ] || need_apt+=(slurmdbd)
command -v mariadb-install-db >/dev/null && { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } \
  || need_apt+=(mariadb-server-core)
command -v mariadb >/dev/null || need_apt+=(mariadb-client-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

step "Go builds: Kubernetes control plane + etcd, interLink (cached by version)"
testbed/build/build-k8s.sh
testbed/build/build-interlink.sh

step "Rucio server + daemons (own venv, cached by version)"
testbed/build/build-rucio.sh

step "Keycloak (the testbed's EGI Check-in; from Maven Central, cached by version)"
testbed/build/build-keycloak.sh

step "Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
export PATH="$PWD/.venv/bin:$PATH"   # jlpm and jupyter-builder for the lab extension build
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# build tools first: the lab extension is built with jlpm from jupyterlab, and the editable
# install below reuses that build instead of running node again
.venv/bin/python -m pip install -q hatchling editables hatch-nodejs-version "hatch-jupyter-builder>=0.9" \
  "jupyterlab>=4.6,<5" "jupyter-builder>=1.2,<2"

step "browser tests (Playwright driving Debian's Chromium)"
if [ ! -x ui-tests/node_modules/.bin/playwright ]; then
  (cd ui-tests && npm ci --silent --no-audit --no-fund 2>/dev/null || npm install --silent --no-audit --no-fund)
fi

step "lab extension"
PYTHON=.venv/bin/python scripts/build-labextension.sh

step "intertwin-hub (editable, with the hub, lab, test and dev extras)"
.venv/bin/python -m pip install -q --no-build-isolation -c constraints/testbed.txt -e ".[dev]"
.venv/bin/python -c "import intertwin_hub, intertwin_lab, kubespawner, jupyterhub"
# serve the lab extension from the source tree (a rebuild is live without reinstalling)
.venv/bin/jupyter labextension develop --overwrite . >/dev/null

step "a second environment with the chart's JupyterHub 5.5 (.venv-jupyterhub5, constraints/chart-4.4.txt)"
# the Zero to JupyterHub chart 4.4.0's hub image runs JupyterHub 5.5: scripts/test.sh runs the
# spawner's tests and spawns through a real hub under it too
if [ ! -x .venv-jupyterhub5/bin/python ]; then python3 -m venv .venv-jupyterhub5; fi
.venv-jupyterhub5/bin/python -m pip install -q --upgrade pip >/dev/null
.venv-jupyterhub5/bin/python -m pip install -q -c constraints/chart-4.4.txt -e ".[test]"
.venv-jupyterhub5/bin/python -c "import jupyterhub; assert jupyterhub.version_info[0] == 5, jupyterhub.__version__"

step "configurable-http-proxy"
if [ ! -x "$CACHE/node/node_modules/.bin/configurable-http-proxy" ]; then
  mkdir -p "$CACHE/node"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/node" configurable-http-proxy@5.3.0
fi
echo; echo "setup done"
