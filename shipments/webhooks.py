"""Webhooks to shops: endpoints, Standard-Webhooks signing, SSRF guard, and sending one request.

The outbox rows are written by the recorder's SQL (shipments.recording.status_rules) in the same
statement as the status change; `shipment.estimate_changed` rows come from the same statement (or
from the scheduled re-estimate in shipments.recording.estimates) together with the estimate they
report.
The relay (shipments.relay) claims endpoints with due rows, sends each endpoint on its own,
logs every attempt and schedules retries with exponential backoff and jitter for
WEBHOOK_RETRY_WINDOW_SECONDS (about three days).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import urllib3
import urllib3.connection
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import outbound
from config.outbound import Target, UnresolvableTarget, UnsafeTarget
from shipments.models import (
    Shop,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
# Bodies of receivers' answers are kept only as far as an operator needs to read an error.
_MAX_RESPONSE_BYTES = 2048
# --- secrets and signatures -------------------------------------------------------------------


def secret_generate() -> str:
    """32 random bytes (the spec asks for 24 to 64), in the Standard Webhooks `whsec_` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    *, endpoint: WebhookEndpoint, message_id: str, timestamp: int, body: bytes
) -> str:
    """One signature per valid secret, space separated: receivers accept any that matches."""
    secrets_in_use = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > timezone.now():
        secrets_in_use.append(endpoint.previous_secret)
    return " ".join(
        signature(secret=s, message_id=message_id, timestamp=timestamp, body=body)
        for s in secrets_in_use
    )


def signature_verify(
    *,
    secret: str,
    headers: dict[str, str],
    body: bytes,
    tolerance_seconds: int = 300,
    now: int | None = None,
) -> bool:
    """What a receiver runs (the README shows the same in a few lines)."""
    message_id = headers["webhook-id"]
    timestamp = int(headers["webhook-timestamp"])
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in headers["webhook-signature"].split()
    )


# --- SSRF guard (config.outbound; WEBHOOK_ALLOW_PRIVATE_TARGETS lifts it) -------------------


def target_resolve(url: str) -> Target:
    """The webhook URL resolved and checked; the request then goes to that address."""
    return outbound.target_resolve(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)


# --- endpoints (services) ---------------------------------------------------------------------


def _event_types_clean(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [t for t in chosen if t not in WebhookEventType.values]
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return chosen or [WebhookEventType.STATUS_CHANGED.value]


def _target_check(url: str) -> None:
    """Refuse a URL that resolves to a forbidden address now. A name that does not resolve yet
    is accepted: the relay checks again before every delivery."""
    try:
        target_resolve(url)
    except UnresolvableTarget:
        return


def webhook_endpoint_create(
    *, shop: Shop, url: str, event_types: Sequence[str], description: str = ""
) -> WebhookEndpoint:
    """Create an endpoint with a fresh secret (the caller shows the secret once)."""
    _target_check(url)
    return WebhookEndpoint.objects.create(
        shop=shop,
        url=url,
        event_types=_event_types_clean(event_types),
        description=description[:200],
        secret=secret_generate(),
    )


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    if url is not None:
        _target_check(url)
        endpoint.url = url
    if event_types is not None:
        endpoint.event_types = _event_types_clean(event_types)
    if description is not None:
        endpoint.description = description[:200]
    endpoint.save(update_fields=["url", "event_types", "description"])
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one keeps signing (second signature) for the overlap period."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(
        seconds=settings.WEBHOOK_SECRET_OVERLAP_SECONDS
    )
    endpoint.secret = secret_generate()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def webhook_endpoint_disable(*, endpoint_id: int, reason: str) -> None:
    """Stop sending; what was still pending becomes failed (replayable after re-enabling)."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).update(
            active=False, disabled_at=timezone.now(), disabled_reason=reason[:300]
        )
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, state=WebhookDelivery.State.PENDING
        ).update(
            state=WebhookDelivery.State.FAILED, last_error=f"endpoint disabled: {reason}"[:2000]
        )
    logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, replay_failed: bool = True) -> int:
    """Re-enable an endpoint and (by default) queue its failed deliveries again. Returns count."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            active=True,
            disabled_at=None,
            disabled_reason="",
            consecutive_failures=0,
            breaker_open_until=None,
            breaker_trips=0,
        )
        replayed = 0
        if replay_failed:
            replayed = webhook_deliveries_replay(endpoint=endpoint)
    endpoint.refresh_from_db()
    return replayed


def webhook_deliveries_replay(*, endpoint: WebhookEndpoint) -> int:
    """Failed deliveries go out again, with their original id and sequence; only those about
    parcels still the endpoint's shop's (a displaced claim's are not: docs/claiming.md)."""
    return WebhookDelivery.objects.filter(
        endpoint=endpoint,
        state=WebhookDelivery.State.FAILED,
        shipment__shop_id=endpoint.shop_id,
    ).update(
        state=WebhookDelivery.State.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        created_at=timezone.now(),
    )


# --- the relay --------------------------------------------------------------------------------


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The body; built only from the row, so every retry sends the same bytes."""
    payload = {
        "id": delivery.webhook_id,
        "type": delivery.event_type,
        "sequence": delivery.sequence,
        "created_at": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "data": delivery.data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, scaled by 0.5 to 1."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    raw = min(settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS, base * 2 ** max(0, attempts - 1))
    return float(raw * random.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _cut(conn: urllib3.connection.HTTPConnection, fired: threading.Event) -> None:
    """The request's deadline passed: shut the socket so the blocked send or read returns."""
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # already closed: the request has ended on its own


def _post(url: str, headers: dict[str, str], body: bytes) -> SendResult:
    """POST to the resolved, checked address: no redirects, a connect timeout, and a deadline
    for the whole request (WEBHOOK_TIMEOUT_SECONDS).

    Socket timeouts bound each read, not the request: a receiver sending a byte now and then
    would hold the sender for ever. A timer shuts the socket at the deadline instead.
    """
    started = time.monotonic()
    total = settings.WEBHOOK_TIMEOUT_SECONDS
    connect = min(settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS, total)
    try:
        target = target_resolve(url)
    except UnsafeTarget as exc:
        return SendResult(None, 0, f"refused: {exc}")
    conn = outbound.connection_open(target, timeout=connect)
    fired = threading.Event()
    watchdog = threading.Timer(max(0.0, total - (time.monotonic() - started)), _cut, (conn, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(max(0.001, total - (time.monotonic() - started)))
        conn.request(
            "POST", target.path, body=body, headers={**headers, "Host": target.host_header}
        )
        response = conn.getresponse()
        text = response.read(_MAX_RESPONSE_BYTES).decode("utf-8", "replace")
        status = response.status
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
        latency = int((time.monotonic() - started) * 1000)
        if fired.is_set() or isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
            return SendResult(None, latency, f"timeout: no answer within {total:g} s ({exc})")
        return SendResult(None, latency, f"error: {exc}")
    finally:
        watchdog.cancel()
        conn.close()
    latency = int((time.monotonic() - started) * 1000)
    if fired.is_set():
        return SendResult(None, latency, f"timeout: no answer within {total:g} s")
    error = "" if 200 <= status < 300 else f"HTTP {status}: {text[:500]}"
    return SendResult(status, latency, error)


def webhook_send(*, delivery: WebhookDelivery) -> SendResult:
    """Sign and POST one delivery (no database access: the relay calls it from its threads)."""
    endpoint = delivery.endpoint
    body = delivery_body(delivery)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "crossborder-hub-webhooks/1",
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            endpoint=endpoint, message_id=delivery.webhook_id, timestamp=timestamp, body=body
        ),
    }
    return _post(endpoint.url, headers, body)


def webhook_deliveries_retry_now(*, endpoint: WebhookEndpoint, at: datetime | None = None) -> int:
    """Make an endpoint's pending deliveries due now (operators' "retry now" after a fix); an
    open breaker goes half-open, so the next pass probes at once."""
    when = at or timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk, breaker_open_until__gt=when).update(
            breaker_open_until=when
        )
        return WebhookDelivery.objects.filter(
            endpoint=endpoint, state=WebhookDelivery.State.PENDING
        ).update(next_attempt_at=when)
