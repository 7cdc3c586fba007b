"""Feed runs: payload and record limits, the run lifecycle, inbox folders, fetching by HTTP."""

from __future__ import annotations

from pathlib import Path

from config.env import envbool, envfloat, envint, envstr
from config.settings.core import BASE_DIR

INGEST_BATCH_SIZE = envint("INGEST_BATCH_SIZE", 20000)
# See warehouses.ingest.batches.flush: batches commit without waiting for the WAL flush.
INGEST_ASYNC_COMMIT = envbool("INGEST_ASYNC_COMMIT", True)
INGEST_MAX_PAYLOAD_BYTES = envint("INGEST_MAX_PAYLOAD_BYTES", 512 * 1024 * 1024)
INGEST_MAX_LINE_BYTES = envint("INGEST_MAX_LINE_BYTES", 1_000_000)
# A JSON record nested deeper, or a record (CSV row, JSON object) with more fields, is rejected
# with its line (warehouses.parsers.limits); Python's JSON decoder fails near 1,000 levels.
INGEST_MAX_JSON_DEPTH = envint("INGEST_MAX_JSON_DEPTH", 64)
INGEST_MAX_FIELDS = envint("INGEST_MAX_FIELDS", 1000)
# Run lifecycle (docs/reliability.md): a run is claimed at most this many times, then fails.
INGEST_MAX_ATTEMPTS = envint("INGEST_MAX_ATTEMPTS", 5)
# A worker beats at least this often while it parses; a `running` run silent for
# INGEST_STALE_AFTER_SECONDS has lost its worker and the sweep sends it again.
INGEST_HEARTBEAT_SECONDS = envint("INGEST_HEARTBEAT_SECONDS", 5)
INGEST_STALE_AFTER_SECONDS = envint("INGEST_STALE_AFTER_SECONDS", 60)
# A `queued` run whose message could not be published is sent by the sweep once this old; one
# whose message went out but was never taken, after INGEST_LOST_AFTER_SECONDS.
INGEST_UNSENT_GRACE_SECONDS = envint("INGEST_UNSENT_GRACE_SECONDS", 30)
INGEST_LOST_AFTER_SECONDS = envint("INGEST_LOST_AFTER_SECONDS", 600)
INGEST_SWEEP_LIMIT = envint("INGEST_SWEEP_LIMIT", 500)
# Wait before the next attempt of a run whose attempt raised: base * 2^(attempt - 1), capped.
INGEST_RETRY_BASE_SECONDS = envint("INGEST_RETRY_BASE_SECONDS", 15)
# Directory feeds read folders under this root only (a feed's folder is relative to it), so a
# feed cannot be pointed at any folder the worker can read and have its files moved away.
INBOX_ROOT = Path(envstr("INBOX_ROOT", str(BASE_DIR / ".local" / "inbox")))
HTTP_FETCH_TIMEOUT = envfloat("HTTP_FETCH_TIMEOUT", 30.0)
# Off in production: HTTP-pull feeds may not reach private, loopback or link-local addresses
# (config/outbound.py), which would read the hub's own network and send it the feed's secret.
FEED_ALLOW_PRIVATE_TARGETS = envbool("FEED_ALLOW_PRIVATE_TARGETS", False)
# Feeds name a secret here (Feed.auth_secret_name) instead of storing credentials in the DB:
# FEED_SECRET_<NAME>="Bearer abc" is sent as the Authorization header.
FEED_SECRETS_PREFIX = "FEED_SECRET_"
