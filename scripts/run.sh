#!/usr/bin/env bash
# Start gogo. Embedded default (no environment): SQLite, in-process tasks, in-memory channel layer.
# With CELERY_BROKER_URL set: Celery workers (ingest, inference+training, default) and beat start
# beside the web server, and stop with it.
# Market data: the replay venue (the recorded Binance session served in Binance's own protocol on
# 127.0.0.1:9443, speed GOGO_REPLAY_SPEED) starts too, and the ETHUSDT/BTCUSDT streams connect to
# it exactly as to Binance. GOGO_REPLAY_VENUE=0 skips it (set GOGO_BINANCE_REST_URL and
# GOGO_BINANCE_WS_URL to the exchange's endpoints to go live on market data).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p var
$BIN/python manage.py migrate --noinput
$BIN/python manage.py gogo_setup
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
if [ "${GOGO_REPLAY_VENUE:-1}" != 0 ]; then
  $BIN/python -m apps.market.venues.replay_server --speed "${GOGO_REPLAY_SPEED:-1}" --port "${GOGO_REPLAY_PORT:-9443}" & pids+=($!)
fi
if [ -n "${CELERY_BROKER_URL:-}" ]; then
  $BIN/celery -A gogo worker -Q ingest -P threads -c 4 -n ingest@%h --loglevel INFO & pids+=($!)
  $BIN/celery -A gogo worker -Q inference,training -c 1 -n ml@%h --loglevel INFO & pids+=($!)
  $BIN/celery -A gogo worker -Q default -c 2 -n default@%h --loglevel INFO & pids+=($!)
  $BIN/celery -A gogo beat --loglevel INFO & pids+=($!)
fi
echo "gogo: http://${GOGO_HOST:-127.0.0.1}:${GOGO_PORT:-8000}/  (replay speed ${GOGO_REPLAY_SPEED:-1}x)"
GOGO_AUTOSTART="${GOGO_AUTOSTART:-streams}" $BIN/uvicorn gogo.asgi:application \
  --host "${GOGO_HOST:-127.0.0.1}" --port "${GOGO_PORT:-8000}" --lifespan on --ws websockets-sansio --log-level info
