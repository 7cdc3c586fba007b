"""How a run reaches a worker, how long it may take, and when the hub gives up on it.

A run is `queued` until a worker claims it (`running`), and ends `succeeded`, `partial` or
`failed`. Three things keep every run moving without a human (docs/reliability.md):

- Attempts are bounded. Each claim is an attempt (one that raised, or whose worker died);
  a busy feed's wait is not. An attempt that raises puts the run back to `queued` with the
  error and a retry due after a backoff; after INGEST_MAX_ATTEMPTS it ends `failed`.
- Heartbeats. The worker holding a run writes `heartbeat_at` when it claims it, with every
  batch's checkpoint, and every few seconds while it parses; a `running` run whose heartbeat is
  stale has lost its worker.
- The sweep (`runs_resend_stuck`, every INGEST_SWEEP_EVERY_SECONDS) sends a message again for
  every run that lost its own: never published (the broker was down), a retry that could not
  be published, a dead worker. A second message for a live run is harmless: the feed's advisory
  lock lets one worker run it; the other waits its turn and then finds the run ended.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now
from django.utils import timezone

from warehouses.models import FeedRun

logger = logging.getLogger(__name__)

UNFINISHED = (FeedRun.Status.QUEUED, FeedRun.Status.RUNNING)


def run_send(run_id: int) -> bool:
    """Publish the run's ingest message; a broker that is down leaves the run to the sweep.

    The run is already committed, so an error here must not reach the caller (the push API
    would answer 500 for a payload the hub has stored).
    """
    from warehouses.tasks import ingest_run

    try:
        ingest_run.delay(run_id)
    except Exception:
        logger.warning(
            "run %s is stored but its message could not be published (broker unreachable?); "
            "the stuck-run sweep sends it once the broker is back",
            run_id,
            exc_info=True,
        )
        run_mark_unsent(run_id=run_id)
        return False
    return True


def run_mark_unsent(*, run_id: int) -> None:
    """No message is on its way for this run: the next sweep sends one."""
    try:
        FeedRun.objects.filter(pk=run_id, status__in=UNFINISHED).update(enqueued_at=None)
    except DatabaseError:
        # Broker and database both down: the run's old send time still lets the sweep find
        # it, after INGEST_LOST_AFTER_SECONDS.
        logger.exception("run %s: could not mark it unsent either", run_id)


def run_waiting(*, run_id: int, due_in: int) -> None:
    """A worker published the run's retry, due in `due_in` seconds.

    For a `queued` run the heartbeat then says when a worker last held its message: if that
    worker dies holding the retry (Redis keeps it unacked for an hour), the sweep sends the run
    again a minute after it fell due.
    """
    due = timezone.now() + timedelta(seconds=due_in)
    try:
        FeedRun.objects.filter(pk=run_id, status=FeedRun.Status.QUEUED).update(
            enqueued_at=due, heartbeat_at=Now()
        )
        FeedRun.objects.filter(pk=run_id, status=FeedRun.Status.RUNNING).update(enqueued_at=due)
    except DatabaseError:
        logger.exception("run %s: could not note its retry", run_id)


def run_give_up(*, run: FeedRun) -> None:
    """A run claimed INGEST_MAX_ATTEMPTS times without finishing ends `failed`."""
    # An attempt that raised records its error; this one's worker stopped (killed, out of
    # memory, over the hard time limit) before it could.
    error = (
        f"gave up after {run.attempts} attempts (INGEST_MAX_ATTEMPTS): the last one stopped "
        f"without an error (worker killed, out of memory or over its time limit?); see the "
        f"worker log for run {run.pk}"
    )
    if run.error:
        error += f"; last error recorded: {run.error}"
    updated = FeedRun.objects.filter(pk=run.pk, status__in=UNFINISHED).update(
        status=FeedRun.Status.FAILED, error=error[:4000], finished_at=Now()
    )
    if updated:
        logger.error("run %s failed: %s", run.pk, error)


def run_interrupted(*, run_id: int, why: str) -> None:
    """An in-process run stopped on purpose: it ends `failed`, not picked up by the sweep."""
    FeedRun.objects.filter(pk=run_id, status__in=UNFINISHED).update(
        status=FeedRun.Status.FAILED, error=why, finished_at=Now()
    )


def retry_delay(attempt: int) -> int:
    return int(min(600, settings.INGEST_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)))


def run_attempt_failed(*, run: FeedRun, exc: BaseException, log_hint: str, retry: bool) -> None:
    """Record why a claimed attempt raised: back to `queued` with a retry due, or `failed`.

    Called by the worker that holds the feed lock, so no other worker has claimed the run.
    """
    attempt, limit = run.attempts, settings.INGEST_MAX_ATTEMPTS
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    hint = log_hint or f"see the worker log for run {run.pk}"
    logger.error(
        "run %s attempt %s of %s failed (%s): %s",
        run.pk,
        attempt,
        limit,
        hint,
        reason,
        exc_info=exc,
    )
    active = FeedRun.objects.filter(pk=run.pk, status=FeedRun.Status.RUNNING)
    try:
        if not retry or attempt >= limit:
            error = f"failed on attempt {attempt} of {limit}: {reason} — {hint}"
            active.update(status=FeedRun.Status.FAILED, error=error, finished_at=Now())
            logger.error("run %s failed: %s", run.pk, error)
            return
        delay = retry_delay(attempt)
        error = f"attempt {attempt} of {limit} failed: {reason} — {hint}; retry in {delay} s"
        active.update(
            status=FeedRun.Status.QUEUED,
            error=error,
            enqueued_at=timezone.now() + timedelta(seconds=delay),
        )
    except DatabaseError:
        # The database went away with the attempt: the run stays `running`, its heartbeat
        # goes stale and the sweep sends it again once the database is back.
        logger.exception("run %s: could not record the failed attempt", run.pk)


def next_attempt_in(*, run_id: int, retries: int) -> int | None:
    """Seconds until a failed attempt's run should be tried again; None when it has ended."""
    try:
        run = FeedRun.objects.only("status", "enqueued_at").get(pk=run_id)
    except DatabaseError:
        # The database is unreachable (the failure was not recorded): back off, uncounted.
        return int(min(300, 5 * 2**retries))
    if run.status not in UNFINISHED:
        return None
    due = run.enqueued_at
    if run.status == FeedRun.Status.QUEUED and due is not None and due > timezone.now():
        return max(1, round((due - timezone.now()).total_seconds()))
    # Raised before a claim (no attempt recorded): back off, uncounted.
    return int(min(300, 5 * 2**retries))


class Heartbeat:
    """Keeps a long batch's run looking alive: one UPDATE every INGEST_HEARTBEAT_SECONDS at
    most, only when the connection is free; a batch's checkpoint UPDATE carries one too."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.every = float(settings.INGEST_HEARTBEAT_SECONDS)
        self.last = time.monotonic()

    def carried(self) -> None:
        """A batch's checkpoint UPDATE set the heartbeat."""
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def beat(self) -> None:
        FeedRun.objects.filter(pk=self.run_id).update(heartbeat_at=Now())
        self.last = time.monotonic()


# Statuses and times are compared in SQL: one statement picks and marks the runs to send, and
# SKIP LOCKED passes over a run whose batch is committing right now (its worker is alive) and
# over runs another sweep (a second beat) is sending.
_STUCK_SQL = """
WITH due AS (
    SELECT id FROM warehouses_feedrun
    WHERE status IN ('queued', 'running') AND (
        (status = 'queued' AND enqueued_at IS NULL AND created_at < %(unsent_before)s)
        OR (status = 'queued' AND enqueued_at < %(lost_before)s)
        OR (status = 'queued' AND enqueued_at < %(broker_restarted_before)s)
        OR (status = 'queued' AND heartbeat_at < %(stale_before)s
            AND enqueued_at < %(stale_before)s)
        OR (status = 'running'
            AND coalesce(heartbeat_at, started_at, created_at) < %(stale_before)s
            AND (enqueued_at IS NULL OR enqueued_at < %(stale_before)s))
    )
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE warehouses_feedrun r SET enqueued_at = statement_timestamp()
FROM due WHERE r.id = due.id
RETURNING r.id, r.status, r.heartbeat_at
"""


# Where the sweep keeps the broker's server id (Redis INFO run_id), to notice a restart.
BROKER_SERVER_KEY = "hub:broker-server-id"
_NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def broker_restarted() -> bool:
    """Whether the Redis broker restarted since the last sweep looked (a new INFO run_id).

    A message a worker had received but not acknowledged when Redis went away stays in Redis's
    unacked set until the visibility timeout (an hour): after a restart, every queued run that
    was published before it is sent again rather than waiting for INGEST_LOST_AFTER_SECONDS.
    The id is kept in Redis itself: with persistence (docker-compose) it survives the restart
    and no longer matches; a Redis without persistence loses it together with every message,
    and that first sight is left to INGEST_LOST_AFTER_SECONDS like any lost message.
    """
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return False
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        with client:
            server_id = str(client.info("server")["run_id"])
            seen = client.getset(BROKER_SERVER_KEY, server_id)
    except (redis.RedisError, OSError, KeyError):
        return False  # the broker is down: nothing can be sent now anyway
    previous = seen.decode() if isinstance(seen, bytes) else seen
    if previous is None or previous == server_id:
        return False
    logger.warning("the broker restarted (server id %s): re-sending runs queued before", server_id)
    return True


def runs_resend_stuck() -> list[int]:
    """Send a message again for every unfinished run that has lost its own (bounded).

    1. `queued`, never published (enqueue failed, retry not published) and older than
       INGEST_UNSENT_GRACE_SECONDS (the creator's own send may still be on its way).
    2. `queued`, published more than INGEST_LOST_AFTER_SECONDS ago and still not taken (a
       message lost silently, e.g. a broker restart without persistence); or, if a worker has
       held its message (a busy feed's retries, a failed attempt's retry), fallen due more than
       INGEST_STALE_AFTER_SECONDS ago with no worker touching it since.
    3. `running` with no heartbeat for INGEST_STALE_AFTER_SECONDS (its worker died) and not
       re-sent within that time already.
    4. `queued` and published before a broker restart this sweep noticed (`broker_restarted`).
    Returns the run ids sent. If the broker is still down, the unsent ones stay marked unsent.
    """
    now = timezone.now()
    params: dict[str, datetime | int] = {
        "unsent_before": now - timedelta(seconds=settings.INGEST_UNSENT_GRACE_SECONDS),
        "lost_before": now - timedelta(seconds=settings.INGEST_LOST_AFTER_SECONDS),
        "stale_before": now - timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS),
        "broker_restarted_before": now if broker_restarted() else _NEVER,
        "limit": settings.INGEST_SWEEP_LIMIT,
    }
    with connection.cursor() as cursor:
        cursor.execute(_STUCK_SQL, params)
        due = sorted(cursor.fetchall())
    sent: list[int] = []
    for index, (run_id, status, heartbeat_at) in enumerate(due):
        if status == FeedRun.Status.RUNNING:
            logger.warning(
                "run %s: no heartbeat since %s, its worker is gone; sending it again",
                run_id,
                heartbeat_at.isoformat() if heartbeat_at else "never",
            )
        else:
            logger.info("run %s: queued without a message on its way; sending it", run_id)
        if not run_send(run_id):
            # The broker is down: the rest stay for the next sweep.
            rest = [r for r, _, _ in due[index + 1 :]]
            FeedRun.objects.filter(pk__in=rest, status__in=UNFINISHED).update(enqueued_at=None)
            break
        sent.append(run_id)
    return sent
