#!/usr/bin/env bash
# Lint, type-check and run the whole test suite against PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ocrreview}
# A Redis database of its own, so tests never meet a running app's tasks.
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/14}
export OCRREVIEW_VAR_DIR=${OCRREVIEW_VAR_DIR:-$PWD/var/test}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
redis-cli -u "$REDIS_URL" flushdb >/dev/null

echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy recognition"
mypy
echo "== makemigrations --check"
python manage.py makemigrations --check --dry-run
echo "== openapi.yaml matches the API (make schema writes it)"
python manage.py spectacular --validate --fail-on-warn --file "$OCRREVIEW_VAR_DIR/openapi.yaml"
diff -u openapi.yaml "$OCRREVIEW_VAR_DIR/openapi.yaml"
echo "== pytest"
pytest "$@"
