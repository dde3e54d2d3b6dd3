"""The Rucio REST server (one Flask app serves the API and auth): runs INSIDE the Rucio venv.

``serve.py PORT``; the config comes from $RUCIO_CONFIG. Werkzeug's threaded server is enough
for the testbed (gunicorn is not a Rucio dependency)."""

from __future__ import annotations

import sys

from rucio.web.rest.flaskapi.v1.main import application

if __name__ == "__main__":
    application.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True, use_reloader=False)
