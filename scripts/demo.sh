#!/usr/bin/env bash
# The demo: set up what is missing, start the whole product on the local testbed and print the
# URL and demo users. `scripts/demo.sh stop` stops it (so does Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "stop" ]; then exec .venv/bin/python -m testbed down; fi
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# offloaded jobs wait 10 s in the emulated batch queue, as they would at a site; users log in
# through the testbed's Keycloak (realm egi), as they do at EGI Check-in on the real hub
.venv/bin/python -m testbed up --queue-seconds 10 --keycloak "$@"
.venv/bin/python - <<'PY'
import json; from testbed.state import default_run_dir, read_state
st = read_state(default_run_dir())
print(f"""
  intertwin-hub demo is running.
    open      {st['hub']['url']}/hub/login
    users     alice (dev.intertwin.eu: UKRI, Vega, PSNC, KBFI), bob (no VO), oper (hub
              operator); password: {st['demo_users']['password']}
    logs      {st['run_dir']}/logs/
    stop      scripts/demo.sh stop   (or Ctrl-C here)
""")
if st.get("keycloak"):
    kc = st["keycloak"]
    print(f"""    login     through the testbed's Keycloak (as EGI Check-in): {kc['url']}/realms/egi
              bob (no VO) is refused with a page saying which VO to join
    keycloak  admin console {kc['url']}/admin/ ({kc['admin_user']} / {kc['admin_password']})
""")
PY
trap '.venv/bin/python -m testbed down' INT TERM
while sleep 3600; do :; done
