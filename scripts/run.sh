#!/usr/bin/env bash
# Sets up and starts ocrreview on this machine: the embedded PostgreSQL (without DATABASE_URL),
# `manage.py prepare` (migrations, a demo admin, the demo collection), then `manage.py serve`:
# the Celery workers and web server under a supervisor that restarts any of them that dies.
# Ctrl+C stops everything, the embedded PostgreSQL included.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
export DEBUG=${DEBUG:-false}

# One run per folder: a second would share the first one's database and, when it stopped,
# stop it. The lock is held by descriptor 9, which `exec` hands to `serve`.
var=${OCRREVIEW_VAR_DIR:-var}
mkdir -p "$var"
exec 9>"$var/run.lock"
if ! flock -n 9; then
  echo "ocrreview is already running from this folder ($var/run.lock is held); stop it first." >&2
  exit 1
fi

if [ -z "${DATABASE_URL:-}" ]; then
  echo "== Embedded PostgreSQL"
  python manage.py embedded_postgres start
  # Until `serve` takes over, a failed setup stops the database it started.
  trap 'python manage.py embedded_postgres stop' EXIT
fi
python manage.py prepare
trap - EXIT
exec python manage.py serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
