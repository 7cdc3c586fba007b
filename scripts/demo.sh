#!/usr/bin/env bash
# Started by `make demo` with DATABASE_URL/REDIS_URL exported: web + worker + beat + simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
export DEBUG="${DEBUG:-1}"
export WEBHOOK_ALLOW_PRIVATE_TARGETS="${WEBHOOK_ALLOW_PRIVATE_TARGETS:-1}"
mkdir -p .local/logs

$BIN/python manage.py migrate --noinput -v0
$BIN/python manage.py demo_seed

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$BIN/python manage.py runserver "127.0.0.1:${PORT}" --noreload >.local/logs/web.log 2>&1 & pids+=($!)
# One worker per queue (config/queues.py), so a hanging webhook receiver never delays ingestion.
$BIN/celery -A config worker -l info -Q ingest -n ingest@%h --concurrency 2 >.local/logs/worker.log 2>&1 & pids+=($!)
$BIN/celery -A config worker -l info -Q webhooks -n webhooks@%h --concurrency 2 >.local/logs/webhook-worker.log 2>&1 & pids+=($!)
$BIN/celery -A config worker -l info -Q maintenance -n maintenance@%h --concurrency 1 >.local/logs/maintenance-worker.log 2>&1 & pids+=($!)
$BIN/celery -A config beat -l info >.local/logs/beat.log 2>&1 & pids+=($!)
$BIN/python manage.py demo_simulator --every 60 >.local/logs/simulator.log 2>&1 & pids+=($!)

for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:${PORT}/healthz" >/dev/null 2>&1 && break
    sleep 0.5
done
cat <<MSG

  Hub is up (logs in .local/logs/; Ctrl-C stops everything):
    admin        http://127.0.0.1:${PORT}/admin/
    API docs     http://127.0.0.1:${PORT}/api/docs/
    tracking     http://127.0.0.1:${PORT}/track/
    health       http://127.0.0.1:${PORT}/healthz
  The simulator drops feed files every minute; beat fetches each feed every minute.
MSG
wait
