#!/usr/bin/env bash
# Start gogo. Embedded default (no environment): SQLite, in-process tasks, in-memory channel layer.
# With CELERY_BROKER_URL set: Celery workers (ingest, inference+training, default) and beat start
# beside the web server, and stop with it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p var
$BIN/python manage.py migrate --noinput
$BIN/python manage.py gogo_setup
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
if [ -n "${CELERY_BROKER_URL:-}" ]; then
  $BIN/celery -A gogo worker -Q ingest -c 1 -n ingest@%h --loglevel INFO & pids+=($!)
  $BIN/celery -A gogo worker -Q inference,training -c 1 -n ml@%h --loglevel INFO & pids+=($!)
  $BIN/celery -A gogo worker -Q default -c 2 -n default@%h --loglevel INFO & pids+=($!)
  $BIN/celery -A gogo beat --loglevel INFO & pids+=($!)
fi
echo "gogo: http://${GOGO_HOST:-127.0.0.1}:${GOGO_PORT:-8000}/  (replay speed ${GOGO_REPLAY_SPEED:-1}x)"
GOGO_AUTOSTART="${GOGO_AUTOSTART:-replay}" $BIN/uvicorn gogo.asgi:application \
  --host "${GOGO_HOST:-127.0.0.1}" --port "${GOGO_PORT:-8000}" --lifespan on --log-level info
