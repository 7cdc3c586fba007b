#!/usr/bin/env bash
# Started by `make demo` with DATABASE_URL/REDIS_URL exported: web + worker + beat + simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
export DEBUG="${DEBUG:-1}"
export WEBHOOK_ALLOW_PRIVATE_TARGETS="${WEBHOOK_ALLOW_PRIVATE_TARGETS:-1}"
# Buyer emails are written as files under .local/mail/ instead of being sent (docs/notifications.md).
export EMAIL_BACKEND="${EMAIL_BACKEND:-django.core.mail.backends.filebased.EmailBackend}"
export EMAIL_FILE_PATH="${EMAIL_FILE_PATH:-.local/mail}"
export NOTIFY_SITE_URL="${NOTIFY_SITE_URL:-http://127.0.0.1:${PORT}}"
mkdir -p .local/logs

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# The web server starts while the hub is prepared (it only answers once asked, below).
$BIN/python manage.py runserver "127.0.0.1:${PORT}" --noreload >.local/logs/web.log 2>&1 & pids+=($!)
# One process: migrations (when any is unapplied), the demo seed, and on a new hub
# DEMO_HISTORY_DAYS (60) days of traffic through the real pipeline (the lanes side by side),
# then the dashboard and delivery estimates, so the first look shows lanes, percentiles and
# charts (docs/demo-history.md). 0 skips the history. A second `make demo` only checks.
echo "Preparing the hub (the history loads once; log in .local/logs/history.log) ..."
: >.local/logs/history.log
# Its log lines (a line per run) go to the history log; the seed's logins and the figures here.
$BIN/python manage.py demo_prepare --days "${DEMO_HISTORY_DAYS:-60}" --history-log .local/logs/history.log \
    2>>.local/logs/history.log || { tail -n 30 .local/logs/history.log; exit 1; }
grep '^demo history' .local/logs/history.log || true

# A Celery process that exits is started again, as docker compose's restart policy does: kombu's
# Redis transport can take a worker down when Redis goes away (docs/faults.md).
supervised() {
    local log=$1 child=""
    shift
    : >"$log"
    trap 'kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
    while true; do
        "$@" >>"$log" 2>&1 &
        child=$!
        wait "$child" || true
        echo "$(date -u +%FT%TZ) demo.sh: '$*' exited; starting it again in 2 s" >>"$log"
        sleep 2
    done
}

# One worker per queue (config/queues.py), so a hanging webhook receiver never delays ingestion.
supervised .local/logs/worker.log $BIN/celery -A config worker -l info -Q ingest -n ingest@%h --concurrency 2 & pids+=($!)
supervised .local/logs/webhook-worker.log $BIN/celery -A config worker -l info -Q webhooks -n webhooks@%h --concurrency 2 & pids+=($!)
supervised .local/logs/maintenance-worker.log $BIN/celery -A config worker -l info -Q maintenance -n maintenance@%h --concurrency 1 & pids+=($!)
supervised .local/logs/beat.log $BIN/celery -A config beat -l info & pids+=($!)
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
