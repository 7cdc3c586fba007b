"""Relaying notifications to shops' webhooks: timeouts, parallelism, circuit breaker, retries.

The relay's period is in the beat schedule (config/settings/celery.py).
"""

from __future__ import annotations

from config.env import envbool, envfloat, envint

# Off in production: a shop could otherwise point a webhook at the hub's own network.
WEBHOOK_ALLOW_PRIVATE_TARGETS = envbool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Per request: connecting, then the whole request (a receiver trickling bytes included) is cut
# at WEBHOOK_TIMEOUT_SECONDS.
WEBHOOK_CONNECT_TIMEOUT_SECONDS = envfloat("WEBHOOK_CONNECT_TIMEOUT_SECONDS", 3.0)
WEBHOOK_TIMEOUT_SECONDS = envfloat("WEBHOOK_TIMEOUT_SECONDS", 10.0)
# A relay pass starts no request after this many seconds; it holds each endpoint it serves for
# this plus one request's timeout plus a margin (shipments.relay.lease_seconds).
WEBHOOK_RELAY_PASS_SECONDS = envfloat("WEBHOOK_RELAY_PASS_SECONDS", 20.0)
# While a pass still sends (a slow endpoint), it claims newly due endpoints this often.
WEBHOOK_RELAY_POLL_SECONDS = envfloat("WEBHOOK_RELAY_POLL_SECONDS", 1.0)
# Endpoints are sent in parallel threads, each with at most this many requests in flight
# (one shipment's notifications always go one after the other, in sequence).
WEBHOOK_RELAY_THREADS = envint("WEBHOOK_RELAY_THREADS", 16)
WEBHOOK_RELAY_ENDPOINTS = envint("WEBHOOK_RELAY_ENDPOINTS", 100)
WEBHOOK_ENDPOINT_CONCURRENCY = envint("WEBHOOK_ENDPOINT_CONCURRENCY", 2)
# Circuit breaker: this many consecutive failures open it for the base period, doubled on each
# failed probe up to the maximum; deliveries stay due meanwhile.
WEBHOOK_BREAKER_FAILURES = envint("WEBHOOK_BREAKER_FAILURES", 5)
WEBHOOK_BREAKER_OPEN_SECONDS = envint("WEBHOOK_BREAKER_OPEN_SECONDS", 30)
WEBHOOK_BREAKER_MAX_OPEN_SECONDS = envint("WEBHOOK_BREAKER_MAX_OPEN_SECONDS", 600)
WEBHOOK_RETRY_BASE_SECONDS = envint("WEBHOOK_RETRY_BASE_SECONDS", 30)
WEBHOOK_RETRY_MAX_DELAY_SECONDS = envint("WEBHOOK_RETRY_MAX_DELAY_SECONDS", 12 * 3600)
WEBHOOK_RETRY_WINDOW_SECONDS = envint("WEBHOOK_RETRY_WINDOW_SECONDS", 3 * 24 * 3600)
WEBHOOK_DISABLE_AFTER_FAILURES = envint("WEBHOOK_DISABLE_AFTER_FAILURES", 100)
WEBHOOK_SECRET_OVERLAP_SECONDS = envint("WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600)
# Deliveries per endpoint per pass.
WEBHOOK_RELAY_BATCH = envint("WEBHOOK_RELAY_BATCH", 200)
