#!/usr/bin/env bash
# Makes sure the test suite's PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL) answer,
# starting this machine's own when they are down and the URL names this machine.
set -uo pipefail
db_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ocrreview}
redis_url=${TEST_REDIS_URL:-redis://127.0.0.1:6379/13}
# The URLs are asked as they are; host and port only decide whether the server is this
# machine's to start (a socket path in the host part is).
host_port() {  # URL, default port -> "host port"
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1])
print(u.unquote(p.hostname or "127.0.0.1"), p.port or sys.argv[2])' "$1" "$2"
}
read -r db_host db_port < <(host_port "$db_url" 5432)
read -r redis_host redis_port < <(host_port "$redis_url" 6379)
local_host() { [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 || $1 == /* ]]; }
db_answers() { pg_isready -q -d "$db_url" 2>/dev/null; }
redis_answers() { [ "$(redis-cli -u "$redis_url" ping 2>/dev/null)" = PONG ]; }

if ! db_answers && local_host "$db_host"; then
  if ! command -v pg_ctlcluster >/dev/null || [ ! -d /etc/postgresql ]; then
    echo "PostgreSQL is not installed here: apt-get install postgresql, or set TEST_DATABASE_URL" >&2
    exit 1
  fi
  echo "== Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 30); do db_answers && break; sleep 1; done
fi
if ! redis_answers && local_host "$redis_host"; then
  if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    echo "A Redis answers on port $redis_port but refuses TEST_REDIS_URL ($redis_url)" >&2
    exit 1
  fi
  if ! command -v redis-server >/dev/null; then
    echo "Redis is not installed here: apt-get install redis-server, or set TEST_REDIS_URL" >&2
    exit 1
  fi
  echo "== Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis_answers && break; sleep 1; done
fi
pg_isready -d "$db_url" && redis-cli -u "$redis_url" ping
