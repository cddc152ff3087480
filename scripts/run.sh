#!/usr/bin/env bash
# Sets up and starts ocrreview on this machine: migrations, a demo admin, the demo
# collection, Celery workers and the web server. Ctrl+C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
export DEBUG=${DEBUG:-false}
port=${PORT:-8000}
host=${HOST:-127.0.0.1}

echo "== Configuration"
python manage.py describe_setup

echo "== Database migrations"
python manage.py migrate --noinput -v0
python manage.py collectstatic --noinput -v0

echo "== Demo admin account"
python manage.py ensure_demo_admin

echo "== Demo collection"
python manage.py load_demo

mkdir -p var/log
pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT INT TERM

echo "== Celery workers (logs in var/log/)"
celery -A ocrreview worker -Q default,gpu --concurrency 1 --hostname "main@%h" \
  --loglevel INFO >var/log/worker.log 2>&1 &
pids+=($!)
celery -A ocrreview worker -Q training --pool solo --hostname "training@%h" \
  --loglevel INFO >var/log/worker-training.log 2>&1 &
pids+=($!)

echo "== Web server"
echo "ocrreview is running at http://$host:$port/  (Ctrl+C stops it)"
gunicorn ocrreview.wsgi --bind "$host:$port" --workers 2 --threads 4 \
  --access-logfile var/log/access.log &
pids+=($!)
wait -n "${pids[@]}"
