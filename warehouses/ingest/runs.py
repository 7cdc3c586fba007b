"""Runs: a stored payload -> parsed, normalized, applied and recorded, batch by batch.

A run moves queued -> running -> succeeded | partial | failed (or is born `duplicate`). One
worker runs a feed's runs at a time (the feed's advisory lock); each batch commits with the
run's checkpoint (ingest/batches.py), so a retried run resumes where the last commit left it.
Attempts, heartbeats and the stuck-run sweep are ingest/lifecycle.py.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from psycopg import errors as psycopg_errors

from config.db import session_lock
from shipments.partitions import EVENTS_TABLE
from shipments.recording.pipelining import PendingCommit
from warehouses.ingest import lifecycle
from warehouses.ingest.batches import Batch, flush, record_error
from warehouses.models import Feed, FeedRun
from warehouses.normalize import storable
from warehouses.normalize.context import feed_context
from warehouses.parsers import encodings, get_declared_encoding, get_parser
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, RecordError
from warehouses.sources.payloads import payload_store

logger = logging.getLogger(__name__)

# Advisory-lock namespace so our keys never collide with another application's.
_FEED_LOCK_NAMESPACE = 72_614


class FeedBusy(Exception):
    """Another worker is running a run of the same feed; try again shortly."""


def feed_run_create(
    *,
    feed: Feed,
    content: IO[bytes],
    original_name: str = "",
    source: str = FeedRun.Source.UPLOAD,
    reprocess: bool = False,
    enqueue: bool = True,
    encoding: str = "",
) -> FeedRun:
    """Store the payload and create its run; the same payload on the same feed is a no-op run.

    With `reprocess`, a payload seen before is run again (its events dedupe): operators use it
    after fixing a feed's mapping. `encoding` ("auto", "utf-8", "gb18030") overrides the
    feed's for this run (the CLI's --encoding); blank = the feed's.
    """
    if encoding:
        encoding = encodings.canonical(encoding)
    stored = payload_store(content=content)
    fields = {
        # Sent once the transaction commits; the sweep sends runs created without a message.
        "enqueued_at": timezone.now() if enqueue else None,
        "feed": feed,
        "encoding": encoding,
        "source": source,
        # A file name from an inbox may hold undecodable bytes (surrogate escapes) or a NUL.
        "original_name": storable.storable_text(original_name)[:300],
        "payload_name": stored.name,
        "payload_sha256": stored.sha256,
        "payload_size": stored.size,
    }
    original = None
    try:
        with transaction.atomic():
            run = FeedRun.objects.create(**fields)
    except IntegrityError:
        original = (
            FeedRun.objects.filter(
                feed=feed, payload_sha256=stored.sha256, duplicate_of__isnull=True
            )
            .only("pk")
            .first()
        )
        if reprocess:
            run = FeedRun.objects.create(**fields, duplicate_of=original)
        else:
            now = timezone.now()
            return FeedRun.objects.create(
                **fields,
                duplicate_of=original,
                status=FeedRun.Status.DUPLICATE,
                started_at=now,
                finished_at=now,
                error=f"same payload as run {original.pk if original else '?'}: nothing to do",
            )
    if enqueue:
        transaction.on_commit(lambda: lifecycle.run_send(run.pk))
    return run


def _feed_lock(feed_id: int) -> AbstractContextManager[bool]:
    """One worker per feed. Behind a pooler in transaction mode the session lock is no guard:
    there the run's claim is the lock instead (`_claim`)."""
    return session_lock(_FEED_LOCK_NAMESPACE, feed_id)


# Behind a pooler: a feed is busy while one of its runs is `running` with a heartbeat younger
# than INGEST_STALE_AFTER_SECONDS (the age at which the sweep deems its worker lost). The
# feed's row lock makes the check and the claim one step for two workers claiming at once.
_FEED_LEASED = """
SELECT EXISTS (
    SELECT 1 FROM warehouses_feedrun
    WHERE feed_id = %s AND status = %s AND heartbeat_at > now() - make_interval(secs => %s)
) FROM warehouses_feed WHERE id = %s FOR UPDATE
"""


def _claim(run: FeedRun) -> int:
    """Mark the run running (one more attempt); 0 when it is finished or out of attempts.

    Behind a pooler, raises FeedBusy while another worker holds the feed's lease (above): a
    worker that died leaves a `running` run whose heartbeat ages, and frees the feed with it.
    """
    claim = FeedRun.objects.filter(
        pk=run.pk,
        status__in=lifecycle.UNFINISHED,
        attempts__lt=settings.INGEST_MAX_ATTEMPTS,
    )
    fields = {
        "status": FeedRun.Status.RUNNING,
        "started_at": Coalesce(F("started_at"), Now()),
        "heartbeat_at": Now(),
        "attempts": F("attempts") + 1,
    }
    if not settings.DATABASE_POOLER:
        return claim.update(**fields)
    with transaction.atomic(), connection.cursor() as cursor:
        stale = settings.INGEST_STALE_AFTER_SECONDS
        cursor.execute(_FEED_LEASED, [run.feed_id, FeedRun.Status.RUNNING, stale, run.feed_id])
        if cursor.fetchone()[0]:
            raise FeedBusy(f"feed {run.feed_id} is busy")
        return claim.update(**fields)


def _decoding(run: FeedRun) -> encodings.Decoding:
    """The encoding the run reads its payload in (warehouses/parsers/encodings.py); decided
    again, identically, when a retried run resumes."""
    return encodings.resolve(
        lambda: default_storage.open(run.payload_name, "rb"),
        requested=run.encoding or run.feed.encoding,
        declared=get_declared_encoding(run.feed.format),
    )


def _records(run: FeedRun, stream: IO[bytes], decoding: encodings.Decoding) -> Iterator[ParseItem]:
    """The parser's items; a fatal format error becomes one last reject (earlier ones are kept)."""
    feed = run.feed
    options = ParseOptions(
        encoding=decoding.parser_encoding,
        column_mapping=feed.column_mapping or {},
        max_line_bytes=settings.INGEST_MAX_LINE_BYTES,
        max_json_depth=settings.INGEST_MAX_JSON_DEPTH,
        max_fields=settings.INGEST_MAX_FIELDS,
    )
    parser = get_parser(feed.format)
    try:
        yield from parser(stream, options)
    except FormatError as exc:
        yield RecordError(line=exc.line, raw=exc.raw, field=exc.field, reason=exc.reason)


def feed_run_execute(
    *,
    run_id: int,
    progress: Callable[[FeedRun], None] | None = None,
    log_hint: str = "",
    retry: bool = True,
) -> FeedRun:
    """Execute a run (idempotent): claim it, stream parse -> normalize -> record, finish it.

    Raises FeedBusy when another run of the same feed holds the feed's lock. An attempt that
    raises is recorded on the run (lifecycle.run_attempt_failed: queued again with a retry
    due, or `failed` after the last attempt, or at once without `retry`) and the error re-raised;
    `log_hint` says where its traceback is.
    """
    run = FeedRun.objects.select_related("feed__warehouse").get(pk=run_id)
    if run.status not in lifecycle.UNFINISHED:
        return run
    with _feed_lock(run.feed_id) as locked:
        if not locked:
            # Never dropped, even for a run whose heartbeat is fresh: the lock may still be
            # held by the backend of a worker killed a moment ago, and this message (its
            # redelivery) is then the one that resumes the run.
            raise FeedBusy(f"feed {run.feed_id} is busy")
        # Holding the feed lock, a `running` run is one whose worker died: resume it.
        claimed = _claim(run)
        run.refresh_from_db()
        if not claimed:
            if run.status in lifecycle.UNFINISHED:
                lifecycle.run_give_up(run=run)
                run.refresh_from_db()
            return run
        if run.attempts > 1:
            logger.info(
                "run %s: attempt %s of %s resumes after record %s",
                run.pk,
                run.attempts,
                settings.INGEST_MAX_ATTEMPTS,
                run.records_processed,
            )
        try:
            _execute_with_races(run, progress)
        except Exception as exc:
            lifecycle.run_attempt_failed(run=run, exc=exc, log_hint=log_hint, retry=retry)
            raise
    run.refresh_from_db()
    return run


def _execute_with_races(run: FeedRun, progress: Callable[[FeedRun], None] | None) -> None:
    races, checkpoint = 0, run.records_processed
    while True:
        try:
            _execute(run, progress)
            return
        except IntegrityError as exc:
            if not _lost_shipment_race(exc):
                raise
            # Its batch rolled back whole; the checkpoint is the last batch committed.
            run.refresh_from_db()
            races = races + 1 if run.records_processed == checkpoint else 1
            checkpoint = run.records_processed
            if races >= _RACE_ATTEMPTS:
                raise
            logger.info("run %s: a shipment of a batch was created concurrently; resuming", run.pk)


# A batch creating a shipment that another transaction creates at the same moment fails at
# commit (`INSERT_SHIPMENTS` in shipments.recording.statements); the run goes on from its
# checkpoint, where the shipment is found. The budget is per batch (it starts again once the
# checkpoint moves). A batch loses again only to another batch that created some of its new
# parcels and committed meanwhile, so its losses in a row are bounded by the other workers'
# batches creating the same parcels: two feeds' first batches over the same 2,400 new parcels
# (tests/warehouses/test_concurrent_feeds.py) lost up to 6 in a row, and a budget of 5 for
# the whole run failed it. A foreign-key failure that is not a race stops at the budget.
_RACE_ATTEMPTS = 50


def _lost_shipment_race(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    # The events table is partitioned (shipments.partitions): PostgreSQL names the partition
    # the row went to, shipments_trackingevent_p2026_12 or shipments_trackingevent_default.
    return (
        isinstance(cause, psycopg_errors.ForeignKeyViolation)
        and (cause.diag.table_name or "").startswith(EVENTS_TABLE)
        and "shipment_id" in (cause.diag.constraint_name or "")
    )


@contextmanager
def _young_gc_only() -> Iterator[None]:
    """No automatic collection while a run parses; the run collects the young generations.

    A batch holds tens of thousands of records and events, and the automatic collections kept
    scanning them: a quarter of the parse time. Ingest data is acyclic (freed by reference
    counting); the young collection after each batch (`_execute_batches`) catches any cycle a
    batch leaves.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _execute(run: FeedRun, progress: Callable[[FeedRun], None] | None) -> None:
    with _young_gc_only():
        _execute_batches(run, progress)


def _execute_batches(run: FeedRun, progress: Callable[[FeedRun], None] | None) -> None:
    ctx = feed_context(run.feed)
    batch = Batch()
    skip = run.records_processed
    index = 0
    error = ""
    batch_size = settings.INGEST_BATCH_SIZE
    pending = PendingCommit(is_record_error=record_error)
    heartbeat = lifecycle.Heartbeat(run.pk)
    decoding = None
    try:
        try:
            decoding = _decoding(run)
            with default_storage.open(run.payload_name, "rb") as stream:
                for item in _records(run, encodings.reader(stream, decoding), decoding):
                    index += 1
                    if not index & 255:
                        if pending.copying:
                            pending.poll()
                        # A long batch (slow format, skipping to the checkpoint) still beats.
                        if not pending.busy and heartbeat.due():
                            heartbeat.beat()
                    if index <= skip:
                        continue
                    batch.add(item, ctx)
                    if batch.count >= batch_size:
                        flush(run, batch, index, pending)
                        heartbeat.carried()
                        gc.collect(1)
                        if progress:
                            pending.wait()
                            run.refresh_from_db()
                            progress(run)
        except FileNotFoundError:
            error = f"payload {run.payload_name} is missing from storage"
        flush(run, batch, index, pending)
        pending.wait()
    except BaseException:
        # The feed lock is released on the way out, on this connection: take its answer first.
        pending.abandon()
        raise
    _finish(run, error, decoding)


def _finish(run: FeedRun, error: str, decoding: encodings.Decoding | None = None) -> None:
    run.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT shipment_id) FROM shipments_trackingevent WHERE run_id = %s",
            [run.pk],
        )
        (touched,) = cursor.fetchone()
    # Good records are events (new or already known) and applied non-event records
    # (memberships, documents): every record that was not rejected.
    good = run.events_created + run.duplicates or run.records > run.rejected
    if error or (run.rejected and not good):
        status = FeedRun.Status.FAILED
    elif run.rejected:
        status = FeedRun.Status.PARTIAL
    else:
        status = FeedRun.Status.SUCCEEDED
    stated: dict[str, object] = {}
    if decoding is not None:
        stated = {"encoding": decoding.encoding, "encoding_detected": decoding.detected}
    FeedRun.objects.filter(pk=run.pk).update(
        status=status,
        error=error or run.error,
        shipments_touched=touched,
        finished_at=Now(),
        **stated,
    )
    logger.info(
        "run %s finished %s: %s records, %s events, %s duplicates, %s rejected",
        run.pk,
        status,
        run.records,
        run.events_created,
        run.duplicates,
        run.rejected,
    )
