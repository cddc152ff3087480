#!/usr/bin/env bash
# Sets up and starts ocrreview on this machine: the embedded PostgreSQL (without DATABASE_URL),
# then `manage.py serve --setup`: migrations, a demo admin, the demo collection, and the Celery
# workers and web server under a supervisor that restarts any of them that dies. Ctrl+C stops
# everything, the embedded PostgreSQL included.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
export DEBUG=${DEBUG:-false}

if [ -z "${DATABASE_URL:-}" ]; then
  echo "== Embedded PostgreSQL"
  python manage.py embedded_postgres start
fi
exec python manage.py serve --setup --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
