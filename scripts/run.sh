#!/usr/bin/env bash
# Sets up and starts ocrreview on this machine: the embedded PostgreSQL (without DATABASE_URL),
# migrations, a demo admin, the demo collection, then the Celery workers and the web server
# under `manage.py serve`, which restarts any of them that dies. Ctrl+C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
export DEBUG=${DEBUG:-false}
port=${PORT:-8000}
host=${HOST:-127.0.0.1}

if [ -z "${DATABASE_URL:-}" ]; then
  echo "== Embedded PostgreSQL"
  python manage.py embedded_postgres start
  # Until `serve` takes over, a failed or interrupted setup stops the database it started.
  trap 'python manage.py embedded_postgres stop' EXIT
fi

echo "== Configuration"
python manage.py describe_setup

echo "== Database migrations"
python manage.py migrate --noinput -v0
python manage.py collectstatic --noinput -v0

echo "== Demo admin account"
python manage.py ensure_demo_admin

echo "== Demo collection"
python manage.py load_demo

trap - EXIT
exec python manage.py serve --host "$host" --port "$port"
