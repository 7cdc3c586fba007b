"""The webhook relay: every endpoint is sent on its own, so one bad endpoint costs only itself.

A pass (the `relay_webhooks` task, on the `webhooks` queue, every few seconds):

1. Claims endpoints, not rows: each active endpoint with due deliveries whose breaker is not
   open and that no other relay holds gets a lease (`relay_leased_until`) longer than the
   pass can last, and its due rows (WEBHOOK_RELAY_BATCH; one probe row when its breaker is
   half-open) are read in the same synchronous transaction. One relay at a time sends to an
   endpoint, so no second relay re-sends what the first is still sending.
2. Sends every endpoint in parallel threads, at most WEBHOOK_ENDPOINT_CONCURRENCY requests in
   flight per endpoint (a shipment's notifications stay in one lane, in order). A lane stops
   at the first failure (the rest stays due for the next pass) and starts nothing after
   WEBHOOK_RELAY_PASS_SECONDS; each request ends within WEBHOOK_TIMEOUT_SECONDS.
3. Records each outcome from the pass's own thread as it arrives (the lanes never touch the
   database), before that lane sends again: the attempt log, the delivery's state or next
   retry, the endpoint's failure count and breaker.
4. Lets each endpoint go as soon as its lanes are done (the lease's time becomes "last
   relayed", which orders the next claim), and, while any lane still runs (a slow endpoint),
   claims what has become due since, every WEBHOOK_RELAY_POLL_SECONDS: a long pass keeps
   serving the other endpoints instead of making them wait for the next one.

A claim's lease (`lease_seconds`: one request's timeout + 10 s) is renewed while the pass runs,
and a lane starts a request only while the lease still outlasts it: no second relay ever sends
to an endpoint the first is still sending to. A relay that dies mid-pass leaves its endpoints
leased for at most `lease_seconds`; the next relay then sends what was not recorded, under the
same message ids: at least once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from shipments.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shipments.webhooks import (
    SendResult,
    retry_delay,
    webhook_endpoint_disable,
    webhook_send,
)

logger = logging.getLogger(__name__)

# A lease is one request's timeout plus this. The pass renews it (every poll) once less than
# the timeout plus half of this is left; a lane starts a request only while the timeout plus
# _LEASE_GUARD_SECONDS is left, so every request ends inside the lease, renewed or not (a
# stalled database stalls the renewal, and the lanes then wait).
_LEASE_MARGIN_SECONDS = 10.0
_LEASE_GUARD_SECONDS = 0.5


def lease_seconds() -> float:
    """How long a claim (or a renewal) holds an endpoint: a killed relay's endpoints are free
    again after at most this long."""
    return settings.WEBHOOK_TIMEOUT_SECONDS + _LEASE_MARGIN_SECONDS


# Endpoints first, by who waited longest; `e.id IN (due rows)` reads the partial index of
# pending rows only, however many delivered rows an endpoint has.
_CLAIM_SQL = """
WITH chosen AS (
    SELECT e.id FROM shipments_webhookendpoint e
    WHERE e.active
      AND (e.relay_leased_until IS NULL OR e.relay_leased_until <= %(now)s)
      AND (e.breaker_open_until IS NULL OR e.breaker_open_until <= %(now)s)
      AND NOT e.id = ANY(%(skip)s)
      AND e.id IN (
          SELECT d.endpoint_id FROM shipments_webhookdelivery d
          WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s)
    ORDER BY e.relay_leased_until NULLS FIRST, e.id
    LIMIT %(endpoints)s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE shipments_webhookendpoint e SET relay_leased_until = %(lease)s
FROM chosen WHERE e.id = chosen.id
RETURNING e.id, e.consecutive_failures >= %(threshold)s
"""

_ROWS_SQL = """
SELECT id FROM (
    SELECT d.id, d.endpoint_id,
           row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS n
    FROM shipments_webhookdelivery d
    WHERE d.endpoint_id = ANY(%(endpoints)s) AND d.state = 'pending'
      AND d.next_attempt_at <= %(now)s
) x
WHERE x.n <= CASE WHEN x.endpoint_id = ANY(%(probes)s) THEN 1 ELSE %(limit)s END
"""

# A failure: count it, and open the breaker at the threshold (and again, for twice as long,
# after each failed probe). A failure of a request sent before it opened (another lane's)
# does not open it again. The right-hand sides all read the row as it was.
_FAILURE_SQL = """
UPDATE shipments_webhookendpoint SET
    consecutive_failures = consecutive_failures + 1,
    breaker_open_until = CASE WHEN %(trip)s
        THEN %(now)s + make_interval(secs => least(%(max)s, %(base)s * power(2, breaker_trips)))
        ELSE breaker_open_until END,
    breaker_trips = CASE WHEN %(trip)s THEN breaker_trips + 1 ELSE breaker_trips END
WHERE id = %(id)s
RETURNING consecutive_failures, breaker_open_until
""".replace(
    "%(trip)s",
    "(consecutive_failures + 1 >= %(threshold)s"
    " AND (breaker_open_until IS NULL OR breaker_open_until <= %(now)s))",
)


def breaker_state(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> str:
    """What an operator reads: closed, open (until when, after how many failures), or
    half-open (the next pass sends one probe)."""
    if endpoint.consecutive_failures < settings.WEBHOOK_BREAKER_FAILURES:
        return "closed"
    until = endpoint.breaker_open_until
    if until is not None and until > (now or timezone.now()):
        return (
            f"open until {until:%Y-%m-%d %H:%M:%S} UTC "
            f"({endpoint.consecutive_failures} failures in a row)"
        )
    return "half-open (next pass sends one probe)"


@dataclass
class _Claim:
    lease: datetime
    lease_ends: float  # the same moment on the monotonic clock (a little before, if anything)
    endpoints: list[int]
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    probes: set[int] = field(default_factory=set)


def _claim(*, limit: int, skip: Iterable[int] = ()) -> _Claim | None:
    """Claim endpoints and read their due rows, in one transaction that commits synchronously.

    Ingest batches commit asynchronously (INGEST_ASYNC_COMMIT), and a crash may lose such a
    commit after its outbox rows were visible. Flushing this commit flushes the WAL before it,
    which holds the commit of every row read here: no notice leaves for a change a crash could
    still take back (and the retried run would announce again under another id).
    """
    started = time.monotonic()
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = on")
        cursor.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "lease": lease,
                "endpoints": settings.WEBHOOK_RELAY_ENDPOINTS,
                "threshold": settings.WEBHOOK_BREAKER_FAILURES,
                "skip": list(skip),
            },
        )
        claimed = cursor.fetchall()
        if not claimed:
            return None
        endpoints = [endpoint_id for endpoint_id, _ in claimed]
        probes = {endpoint_id for endpoint_id, probe in claimed if probe}
        cursor.execute(
            _ROWS_SQL, {"endpoints": endpoints, "now": now, "probes": list(probes), "limit": limit}
        )
        ids = [row[0] for row in cursor.fetchall()]
    deliveries = list(
        WebhookDelivery.objects.filter(pk__in=ids).select_related("endpoint").order_by("id")
    )
    return _Claim(lease, started + lease_seconds(), endpoints, deliveries, probes)


def _release(endpoint_ids: Iterable[int], lease: datetime) -> None:
    """Let endpoints go now rather than when the lease runs out; only our own lease."""
    WebhookEndpoint.objects.filter(pk__in=list(endpoint_ids), relay_leased_until=lease).update(
        relay_leased_until=timezone.now()
    )


def _record(delivery: WebhookDelivery, result: SendResult) -> bool:
    """Store one attempt's outcome. Returns whether to go on sending to this endpoint.

    The delivery row is locked first. If the endpoint is being deleted, its deletion either
    removed the row already (nothing to record: the endpoint is gone) or waits for this
    transaction, and the database's ON DELETE CASCADE then takes the new attempt row too.
    """
    now = timezone.now()
    attempts = delivery.attempts + 1
    endpoint_id = delivery.endpoint_id
    with transaction.atomic():
        rows = WebhookDelivery.objects.filter(pk=delivery.pk)
        if result.ok:
            changed = rows.update(
                state=WebhookDelivery.State.DELIVERED,
                delivered_at=now,
                attempts=F("attempts") + 1,
                last_status_code=result.status_code,
                last_error="",
            )
        elif result.status_code == 410:
            changed = rows.update(
                state=WebhookDelivery.State.FAILED,
                attempts=F("attempts") + 1,
                last_status_code=410,
                last_error=result.error[:2000],
            )
        else:
            next_at = now + timedelta(seconds=retry_delay(attempts))
            window = timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS)
            gave_up = next_at > delivery.created_at + window
            changed = rows.update(
                state=WebhookDelivery.State.FAILED if gave_up else WebhookDelivery.State.PENDING,
                attempts=F("attempts") + 1,
                next_attempt_at=next_at,
                last_status_code=result.status_code,
                last_error=result.error[:2000],
            )
        if not changed:
            logger.info("webhook endpoint %s was deleted during a relay pass", endpoint_id)
            return False
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            endpoint_id=endpoint_id,
            attempted_at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error[:2000],
        )
        if result.ok:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                consecutive_failures=0, breaker_open_until=None, breaker_trips=0
            )
            return True
        if result.status_code == 410:
            # The receiver saying "stop": the endpoint is disabled at once.
            webhook_endpoint_disable(endpoint_id=endpoint_id, reason="receiver answered 410 Gone")
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                _FAILURE_SQL,
                {
                    "id": endpoint_id,
                    "now": now,
                    "threshold": settings.WEBHOOK_BREAKER_FAILURES,
                    "base": settings.WEBHOOK_BREAKER_OPEN_SECONDS,
                    "max": settings.WEBHOOK_BREAKER_MAX_OPEN_SECONDS,
                },
            )
            row = cursor.fetchone()
        failures, open_until = row if row else (0, None)
        if failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES:
            webhook_endpoint_disable(
                endpoint_id=endpoint_id, reason=f"{failures} consecutive failed deliveries"
            )
        elif open_until is not None and open_until > now:
            logger.warning(
                "webhook endpoint %s: breaker open until %s after %s consecutive failures",
                endpoint_id,
                open_until.isoformat(),
                failures,
            )
    return False


_Outcome = tuple[WebhookDelivery, SendResult, threading.Event]
# What lanes tell the pass's thread: an outcome, or "this endpoint's lane is done" (its id).
_Message = _Outcome | int


def _lane_send(
    endpoint_id: int,
    deliveries: list[WebhookDelivery],
    stop: threading.Event,
    deadline: float,
    lease_ends: dict[int, float],
    results: queue.SimpleQueue[_Message],
) -> None:
    """One lane of one endpoint, in a thread: HTTP only. Each outcome goes to the pass's
    thread, and the next request waits until it is recorded, so what recording decides (the
    endpoint was deleted, disabled, its breaker opened) holds from the very next request."""
    try:
        needed = settings.WEBHOOK_TIMEOUT_SECONDS + _LEASE_GUARD_SECONDS
        for delivery in deliveries:
            if stop.is_set() or time.monotonic() >= deadline:
                return
            # The lease must outlast this request; a renewal is at most a poll away.
            while lease_ends.get(endpoint_id, 0.0) - time.monotonic() < needed:
                if stop.is_set() or time.monotonic() >= deadline:
                    return
                time.sleep(0.05)
            result = webhook_send(delivery=delivery)
            recorded = threading.Event()
            results.put((delivery, result, recorded))
            if not result.ok:
                # Whatever went wrong, more requests now would likely go the same way.
                stop.set()
                return
            while not recorded.wait(0.1):
                if stop.is_set():
                    return
    except Exception:
        logger.exception("webhook relay lane failed")
        stop.set()
    finally:
        results.put(endpoint_id)


def _lanes(claim: _Claim) -> list[tuple[int, list[WebhookDelivery]]]:
    width = max(1, settings.WEBHOOK_ENDPOINT_CONCURRENCY)
    lanes: dict[tuple[int, int], list[WebhookDelivery]] = defaultdict(list)
    for delivery in claim.deliveries:
        lane = delivery.shipment_id % width
        lanes[(delivery.endpoint_id, lane)].append(delivery)
    return [(endpoint_id, rows) for (endpoint_id, _), rows in lanes.items()]


def webhook_deliveries_send(*, limit: int | None = None) -> int:
    """One relay pass (see the module's docstring). Returns how many requests were sent."""
    first = _claim(limit=limit or settings.WEBHOOK_RELAY_BATCH)
    if first is None:
        return 0
    return _Pass(limit or settings.WEBHOOK_RELAY_BATCH).run(first)


class _Pass:
    """Sends what it claimed and, while any endpoint is still being sent, claims what has
    become due since, every WEBHOOK_RELAY_POLL_SECONDS: a pass kept long by one slow endpoint
    keeps serving the others instead of leaving them to wait for it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.deadline = time.monotonic() + settings.WEBHOOK_RELAY_PASS_SECONDS
        self.results: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self.stops: dict[int, threading.Event] = {}
        self.leases: dict[int, datetime] = {}
        # When each held lease ends, on this process's monotonic clock (read by the lanes).
        self.lease_ends: dict[int, float] = {}
        self.lanes_left: dict[int, int] = {}
        # Failed in this pass: not claimed again before the next one.
        self.failed: set[int] = set()
        self.sent = 0

    def run(self, first: _Claim) -> int:
        pool = ThreadPoolExecutor(
            max_workers=settings.WEBHOOK_RELAY_THREADS, thread_name_prefix="webhook-relay"
        )
        try:
            with pool:
                try:
                    self._start(pool, first)
                    self._loop(pool)
                except BaseException:
                    # The pass is failing (database gone, time limit): the lanes start
                    # nothing more, and stop waiting for outcomes nobody will record (the
                    # pool's exit waits for them).
                    for stop in self.stops.values():
                        stop.set()
                    raise
        finally:
            by_lease: dict[datetime, list[int]] = defaultdict(list)
            for endpoint_id, lease in self.leases.items():
                by_lease[lease].append(endpoint_id)
            for lease, endpoint_ids in by_lease.items():
                _release(endpoint_ids, lease)
        return self.sent

    def _start(self, pool: ThreadPoolExecutor, claim: _Claim) -> None:
        for endpoint_id in claim.endpoints:
            self.stops[endpoint_id] = threading.Event()
            self.leases[endpoint_id] = claim.lease
            self.lease_ends[endpoint_id] = claim.lease_ends
        for endpoint_id, rows in _lanes(claim):
            self.lanes_left[endpoint_id] = self.lanes_left.get(endpoint_id, 0) + 1
            pool.submit(
                _lane_send,
                endpoint_id,
                rows,
                self.stops[endpoint_id],
                self.deadline,
                self.lease_ends,
                self.results,
            )
        # Claimed, but its rows were taken back meanwhile (replayed, disabled): let it go.
        idle = [e for e in claim.endpoints if e not in self.lanes_left]
        if idle:
            _release(idle, claim.lease)
            for endpoint_id in idle:
                del self.leases[endpoint_id]
                del self.lease_ends[endpoint_id]

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        poll = settings.WEBHOOK_RELAY_POLL_SECONDS
        next_tick = time.monotonic() + poll
        while self.lanes_left:
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + poll
                self._renew()
                if time.monotonic() < self.deadline:
                    claim = _claim(limit=self.limit, skip=set(self.leases) | self.failed)
                    if claim is not None:
                        self._start(pool, claim)
            try:
                item = self.results.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                continue
            if isinstance(item, int):
                self._lane_done(item)
                continue
            delivery, result, recorded = item
            self.sent += 1
            if not result.ok:
                self.failed.add(delivery.endpoint_id)
            if not _record(delivery, result):
                self.stops[delivery.endpoint_id].set()
            recorded.set()

    def _renew(self) -> None:
        """Extend the leases that are getting short, only where they are still ours."""
        soon = time.monotonic() + settings.WEBHOOK_TIMEOUT_SECONDS + _LEASE_MARGIN_SECONDS / 2
        by_lease: dict[datetime, list[int]] = defaultdict(list)
        for endpoint_id in self.lanes_left:
            if self.lease_ends[endpoint_id] < soon:
                by_lease[self.leases[endpoint_id]].append(endpoint_id)
        for old, endpoint_ids in by_lease.items():
            started = time.monotonic()
            new = timezone.now() + timedelta(seconds=lease_seconds())
            renewed = set(
                WebhookEndpoint.objects.filter(
                    pk__in=endpoint_ids, relay_leased_until=old
                ).values_list("pk", flat=True)
            )
            WebhookEndpoint.objects.filter(pk__in=renewed, relay_leased_until=old).update(
                relay_leased_until=new
            )
            for endpoint_id in endpoint_ids:
                if endpoint_id in renewed:
                    self.leases[endpoint_id] = new
                    self.lease_ends[endpoint_id] = started + lease_seconds()
                else:  # deleted meanwhile
                    self.stops[endpoint_id].set()

    def _lane_done(self, endpoint_id: int) -> None:
        self.lanes_left[endpoint_id] -= 1
        if self.lanes_left[endpoint_id]:
            return
        # The endpoint's last lane ended: another pass (or this one) may take it now.
        del self.lanes_left[endpoint_id]
        self.lease_ends.pop(endpoint_id, None)
        _release([endpoint_id], self.leases.pop(endpoint_id))
