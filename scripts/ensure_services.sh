#!/usr/bin/env bash
# Make sure the test Postgres and Redis answer; start them when installed but stopped.
# Fails with a clear message otherwise: the suite never silently skips a missing service.
set -uo pipefail
DB_URL="$1"; REDIS_URL="$2"
PG_HOST=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.hostname or '127.0.0.1')" "$DB_URL")
PG_PORT=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.port or 5432)" "$DB_URL")
PG_USER=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.username or 'postgres')" "$DB_URL")
R_HOST=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.hostname or '127.0.0.1')" "$REDIS_URL")
R_PORT=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.port or 6379)" "$REDIS_URL")

pg_ok() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" 2>/dev/null; }
redis_ok() { redis-cli -h "$R_HOST" -p "$R_PORT" ping 2>/dev/null | grep -q PONG; }
is_local() { [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" ]]; }

if ! command -v pg_isready >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "ERROR: pg_isready / redis-cli not found: install postgresql-client and redis-tools." >&2
  exit 1
fi

if ! pg_ok; then
  if is_local "$PG_HOST" && [ -d /etc/postgresql ]; then
    echo "Postgres is not answering on $PG_HOST:$PG_PORT; starting it..."
    for v in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do pg_ok && break; sleep 1; done
  fi
  pg_ok || { echo "ERROR: Postgres at $PG_HOST:$PG_PORT does not answer and could not be started. The suite needs it." >&2; exit 1; }
fi

if ! redis_ok; then
  if is_local "$R_HOST" && command -v redis-server >/dev/null; then
    echo "Redis is not answering on $R_HOST:$R_PORT; starting it..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$R_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 20); do redis_ok && break; sleep 0.5; done
  fi
  redis_ok || { echo "ERROR: Redis at $R_HOST:$R_PORT does not answer and could not be started. The suite needs it." >&2; exit 1; }
fi
echo "Postgres ($PG_HOST:$PG_PORT) and Redis ($R_HOST:$R_PORT) answer."
