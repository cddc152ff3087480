#!/usr/bin/env bash
# Lint, type-check and run the whole test suite against PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ocrreview}
# A Redis database of its own, so tests never meet a running app's tasks.
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/13}
export OCRREVIEW_VAR_DIR=${OCRREVIEW_VAR_DIR:-$PWD/var/test}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# pytest runs in TEST_PROCESSES processes (pytest-xdist): most of the suite's time is spent
# waiting on the workers, servers and browsers it starts, which the other processes fill. Each
# has a test database (pytest-django), a Redis database and a var folder of its own
# (tests/parallel.py): REDIS_URL's database and the ones after it.
processes=${TEST_PROCESSES:-3}
if [[ ! $processes =~ ^[1-9][0-9]*$ ]]; then
    echo "TEST_PROCESSES must be a number of processes, 1 or more (got '$processes')" >&2
    exit 2
fi
if [[ ! $REDIS_URL =~ /[0-9]+$ ]]; then
    echo "TEST_REDIS_URL must end with a database number, as in redis://127.0.0.1:6379/13" >&2
    exit 2
fi
redis_db=$((10#${REDIS_URL##*/}))
if (( redis_db + processes > 16 )); then
    echo "TEST_REDIS_URL's database ($redis_db) leaves no room for $processes processes' own (Redis has 0 to 15)" >&2
    exit 2
fi
for ((i = 0; i < processes; i++)); do
    redis-cli -u "${REDIS_URL%/*}/$((redis_db + i))" flushdb >/dev/null
done
parallel=()
if (( processes > 1 )); then
    parallel=(-p tests.parallel -n "$processes" --dist worksteal)
    # One torch thread per process, its workers included: with a pool of a thread per core in
    # each, the processes outnumber the cores and OpenMP's threads spin waiting on each other
    # (the worker and training tests took a quarter longer on two cores so).
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi

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
python -m pytest "${parallel[@]}" "$@"
