"""Every write on the sources side: storing payloads, creating and executing runs, fetching.

A run moves queued -> running -> succeeded | partial | failed (or is born `duplicate`). It is
executed batch by batch; each batch's events, rejects and the run's checkpoint commit together,
so a worker killed mid-run is resumed by the next attempt exactly where the last commit left it.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn, cast

import requests
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from psycopg import errors as psycopg_errors

from shipments.recording import EventInput, PreparedEvents, events_prepare, events_record_start
from shipments.recording.pipelining import PendingCommit
from warehouses.ingest import lifecycle
from warehouses.ingest.apply import event_needs_apply, records_apply
from warehouses.models import Feed, FeedRun, RejectedRecord
from warehouses.normalize import storable
from warehouses.normalize.context import FeedContext, feed_context
from warehouses.normalize.events import normalize_event
from warehouses.parsers import encodings, get_declared_encoding, get_parser
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError

logger = logging.getLogger(__name__)

# Advisory-lock namespace so our keys never collide with another application's.
_FEED_LOCK_NAMESPACE = 72_614


class PayloadTooLarge(Exception):
    pass


class FeedBusy(Exception):
    """Another worker is running a run of the same feed; try again shortly."""


class FetchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StoredPayload:
    name: str
    sha256: str
    size: int


def payload_store(*, content: IO[bytes], max_bytes: int | None = None) -> StoredPayload:
    """Store a payload as-is under its sha256 through the storage API (content-addressed)."""
    limit = max_bytes if max_bytes is not None else settings.INGEST_MAX_PAYLOAD_BYTES
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        while chunk := content.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"payload exceeds the limit of {limit} bytes")
            digest.update(chunk)
            spool.write(chunk)
        sha = digest.hexdigest()
        name = f"payloads/{sha[:2]}/{sha}"
        if not default_storage.exists(name):
            spool.seek(0)
            name = default_storage.save(name, File(spool))
    return StoredPayload(name=name, sha256=sha, size=size)


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


@contextmanager
def _feed_lock(feed_id: int) -> Iterator[bool]:
    """A session-level advisory lock: released by PostgreSQL itself if the worker dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_FEED_LOCK_NAMESPACE, feed_id])
        (locked,) = cursor.fetchone()
    try:
        yield bool(locked)
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_FEED_LOCK_NAMESPACE, feed_id])


@dataclass
class _Batch:
    events: list[EventInput] = field(default_factory=list)
    rejects: list[RecordError] = field(default_factory=list)
    # memberships, shipment facts, customs documents, retractions: see warehouses/ingest/apply/
    others: list[Record] = field(default_factory=list)
    count: int = 0

    def add(self, item: ParseItem, ctx: FeedContext) -> None:
        self.count += 1
        if isinstance(item, RecordError):
            self.rejects.append(item)
            return
        unstorable = storable.record_problem(item)
        if unstorable:
            self.rejects.append(unstorable)
            return
        if item.kind != "event" or event_needs_apply(item):
            # Events that need the database before they can be normalized (EDI interchange
            # history, EPC identifier mapping, CEB receipts naming only a declaration number)
            # are resolved set-based in apply.records_apply, which adds them to events.
            self.others.append(item)
            return
        try:
            result = normalize_event(item, ctx)
        except OverflowError:
            # A time at the edge of the calendar (year 1 or 9999) moved past it by its offset.
            result = RecordError(
                line=item.line,
                raw=item.raw,
                field="event_time",
                reason=f"event time {item.event_time!s:.40} is out of range in UTC",
            )
        except Exception as exc:
            # A normalizer bug must cost one record, never the run; the log has the traceback.
            logger.exception("normalizing line %s failed", item.line)
            result = RecordError(
                line=item.line, raw=item.raw, field="", reason=f"internal error: {exc!r}"
            )
        if isinstance(result, EventInput):
            result = storable.event_problem(result) or result
        if isinstance(result, RecordError):
            self.rejects.append(result)
        else:
            self.events.append(result)

    def clear(self) -> None:
        self.events, self.rejects, self.others, self.count = [], [], [], 0

    def copy(self) -> _Batch:
        """The batch as it is now (recording it appends to its lists)."""
        return _Batch(list(self.events), list(self.rejects), list(self.others), self.count)


# Errors that belong to the values of a batch's records rather than to the database or the
# code: SQLSTATE class 22 (data exception: NUL, bad encoding, string or numeric overflow,
# invalid text representation, datetime overflow), 23514 (a CHECK constraint), and psycopg's
# refusal to send text it cannot encode. A batch failing with one is recorded in halves
# (`_isolate`); any other error fails the batch whole.
_RECORD_ERRORS = (psycopg_errors.DataError, psycopg_errors.CheckViolation, UnicodeEncodeError)


def _record_error(exc: BaseException) -> BaseException | None:
    """The record-level error behind `exc` (Django wraps psycopg's errors), or None."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, _RECORD_ERRORS):
            return candidate
    return None


def _flush(run: FeedRun, batch: _Batch, processed: int, pending: PendingCommit) -> None:
    """Commit one batch: events, rejects and the run's checkpoint in one transaction.

    Outside any transaction of the caller (a worker), the end of the batch and its COMMIT are
    sent without waiting (`PendingCommit`); inside one (tests, a caller's atomic block) the
    batch is a savepoint and runs to the end here.
    """
    prepared = None
    if batch.events and not batch.others and not connection.in_atomic_block:
        # Keys and facts need no database: worked out while it finishes the previous batch.
        # (Other records can add events to the batch, so then they are worked out later.)
        prepared = events_prepare(events=batch.events, feed_id=run.feed_id)
    pending.wait()
    if not batch.count:
        return
    sent = batch.copy()
    if connection.in_atomic_block:
        try:
            with transaction.atomic():
                _record(run, batch, processed, pending=None)
        except Exception as exc:
            if not _record_error(exc):
                raise
            _isolate(run, sent, processed, exc)
        batch.clear()
        return
    connection.set_autocommit(False)
    try:
        _record(
            run,
            batch,
            processed,
            pending=pending,
            prepared=prepared,
            on_record_error=lambda exc: _isolate(run, sent, processed, exc),
        )
    except BaseException as exc:
        if not pending.busy:
            connection.rollback()
            connection.set_autocommit(True)
        if pending.busy or not isinstance(exc, Exception) or not _record_error(exc):
            raise
        _isolate(run, sent, processed, exc)
    batch.clear()


def _isolate(run: FeedRun, batch: _Batch, processed: int, error: BaseException) -> None:
    """Record a batch that failed on a record's value, storing every record but the bad ones.

    1. In one transaction (a savepoint inside a caller's), record each half of the batch's
       records in a savepoint of its own; a half that fails again is halved, down to single
       records (about 2·log2(batch) attempts per bad record).
    2. A record that fails alone is rejected with the database's message.
    3. The parser's rejects, those records and the run's checkpoint commit with the halves,
       as the batch would have.
    When every record of a batch of several fails alone, the fault is not theirs (a broken
    statement, a constraint nothing meets): the batch fails whole with the first error.
    """
    entries: list[EventInput | Record] = sorted(
        [*batch.events, *batch.others], key=lambda entry: entry.line
    )
    if not entries:
        _reraise(error)
    logger.warning(
        "run %s: a batch of %s records failed (%s); isolating the records the database refuses",
        run.pk,
        len(entries),
        str(error).splitlines()[0] if str(error) else type(error).__name__,
    )
    refused: list[RecordError] = []
    parts = deque(_halves(entries))
    with transaction.atomic():
        if len(entries) == 1:
            refused.append(_refused(entries[0], error))
        while parts:
            part = parts.popleft()
            events = [e for e in part if isinstance(e, EventInput)]
            others = [r for r in part if isinstance(r, Record)]
            try:
                with transaction.atomic():
                    _record(run, _Batch(events, [], others), processed, pending=None)
            except Exception as exc:
                cause = _record_error(exc)
                if not cause:
                    raise
                if len(part) == 1:
                    refused.append(_refused(part[0], cause))
                else:
                    parts.extendleft(reversed(_halves(part)))
        if len(entries) > 1 and len(refused) == len(entries):
            _reraise(error)
        closing = _Batch(rejects=[*batch.rejects, *refused], count=batch.count)
        _record(run, closing, processed, pending=None)


def _reraise(error: BaseException) -> NoReturn:
    with connection.wrap_database_errors:  # as Django's error, whichever path caught it
        raise error
    raise error  # pragma: no cover - not a database error: raised as it is above


def _halves(entries: list[EventInput | Record]) -> list[list[EventInput | Record]]:
    middle = len(entries) // 2
    return [entries[:middle], entries[middle:]] if middle else []


def _refused(entry: EventInput | Record, error: BaseException) -> RecordError:
    """The reject of a record the database refused, with the database's own message."""
    diag = getattr(error, "diag", None)
    column = (diag.column_name if diag else None) or ""
    message = (diag.message_primary if diag else None) or str(error)
    return RecordError(
        line=entry.line,
        raw=entry.raw,
        field=column,
        reason=f"the database cannot store this record: {message}",
    )


def _record(
    run: FeedRun,
    batch: _Batch,
    processed: int,
    *,
    pending: PendingCommit | None,
    prepared: PreparedEvents | None = None,
    on_record_error: Callable[[BaseException], None] | None = None,
) -> None:
    """The batch's statements, in the current transaction; with `pending`, its COMMIT too."""
    if settings.INGEST_ASYNC_COMMIT:
        # Waiting for the WAL flush of every batch costs more than recording it. Skipping
        # the wait is safe here: the run's checkpoint commits with the batch, so a commit
        # lost in a database crash is a batch the retried run records again (dedupe keys).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
    if batch.others:
        # Memberships and shipment facts first, so events of this batch see them.
        batch.rejects += records_apply(
            run=run, records=batch.others, ctx=feed_context(run.feed), events=batch.events
        )
    recording = events_record_start(
        events=batch.events,
        feed_id=run.feed_id,
        run_id=run.pk,
        warehouse_id=run.feed.warehouse_id,
        prepared=prepared,
        defer_shipments=pending is not None,
    )
    result = recording.result
    rejects = [
        # Any text a reject carries is made storable: the reject of a value PostgreSQL
        # refused must never fail for the same reason.
        RejectedRecord(
            run_id=run.pk,
            line=r.line,
            field=storable.storable_text(r.field)[:100],
            reason=storable.storable_text(r.reason[:2000]),
            raw=storable.storable_text(r.raw),
            unknown_code=storable.storable_text(r.unknown_code)[:200],
        )
        for r in batch.rejects
    ]
    if result.repeated_lines:
        # A row repeating an earlier row of the same file is a duplicate, not a reject: there
        # is nothing to fix, so it is counted in `duplicates` and logged, never sent to triage.
        line, first = result.repeated_lines[0]
        logger.info(
            "run %s: %s row(s) repeat an earlier row of the file (kept once), e.g. line %s = %s",
            run.pk,
            len(result.repeated_lines),
            line,
            first,
        )
    if rejects:
        RejectedRecord.objects.bulk_create(rejects, ignore_conflicts=True)
    FeedRun.objects.filter(pk=run.pk).update(
        records_processed=processed,
        heartbeat_at=Now(),
        records=F("records") + batch.count,
        events_created=F("events_created") + result.created,
        duplicates=F("duplicates") + result.duplicates,
        rejected=F("rejected") + len(rejects),
    )
    if pending is None:
        recording.finish()
        return
    script, copied = recording.copy_unawaited()
    pending.send(script + "COMMIT;", after_copy=copied, on_record_error=on_record_error)


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
        claimed = FeedRun.objects.filter(
            pk=run_id,
            status__in=lifecycle.UNFINISHED,
            attempts__lt=settings.INGEST_MAX_ATTEMPTS,
        ).update(
            status=FeedRun.Status.RUNNING,
            started_at=Coalesce(F("started_at"), Now()),
            heartbeat_at=Now(),
            attempts=F("attempts") + 1,
        )
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
    for attempt in range(1, _RACE_ATTEMPTS + 1):
        try:
            _execute(run, progress)
            return
        except IntegrityError as exc:
            if attempt == _RACE_ATTEMPTS or not _lost_shipment_race(exc):
                raise
            # Its batch rolled back whole; the checkpoint is the last batch committed.
            logger.info("run %s: a shipment of a batch was created concurrently; resuming", run.pk)
            run.refresh_from_db()


# A batch creating a shipment that another transaction creates at the same moment fails at
# commit (`INSERT_SHIPMENTS` in shipments.recording.statements); the run goes on from its
# checkpoint, where the shipment is found. Two feeds would have to race for the same new parcel
# that many times.
_RACE_ATTEMPTS = 5


def _lost_shipment_race(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    return (
        isinstance(cause, psycopg_errors.ForeignKeyViolation)
        and cause.diag.table_name == "shipments_trackingevent"
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
    batch = _Batch()
    skip = run.records_processed
    index = 0
    error = ""
    batch_size = settings.INGEST_BATCH_SIZE
    pending = PendingCommit(is_record_error=_record_error)
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
                        _flush(run, batch, index, pending)
                        heartbeat.carried()
                        gc.collect(1)
                        if progress:
                            pending.wait()
                            run.refresh_from_db()
                            progress(run)
        except FileNotFoundError:
            error = f"payload {run.payload_name} is missing from storage"
        _flush(run, batch, index, pending)
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


# --- transports ------------------------------------------------------------------------------


def inbox_path(feed: Feed) -> Path:
    return Path(feed.source_location) if feed.source_location else settings.INBOX_ROOT / feed.code


def inbox_collect(*, feed: Feed, stale_after: float = 600.0) -> list[FeedRun]:
    """Take every file from the feed's inbox folder; each file is read once.

    1. Claim a file by renaming it into `processing/` (atomic: of two workers, one wins).
    2. Store it and create its run (the payload hash makes a second attempt a no-op).
    3. Move it to `processed/`. A file left in `processing/` by a dead worker is retried
       after `stale_after` seconds.
    """
    root = inbox_path(feed)
    processing, processed = root / "processing", root / "processed"
    for folder in (root, processing, processed):
        folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    candidates = [p for p in sorted(processing.iterdir()) if now - p.stat().st_mtime > stale_after]
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue  # dot-files are uploads still being written
        target = processing / path.name
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue  # another worker took it
        os.utime(target)
        candidates.append(target)
    runs = []
    for path in candidates:
        with path.open("rb") as handle:
            run = feed_run_create(
                feed=feed, content=handle, original_name=path.name, source=FeedRun.Source.DIRECTORY
            )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        os.replace(path, processed / f"{stamp}-{path.name}")
        runs.append(run)
    return runs


def _auth_header(feed: Feed) -> dict[str, str]:
    if not feed.auth_secret_name:
        return {}
    value = os.environ.get(settings.FEED_SECRETS_PREFIX + feed.auth_secret_name.upper(), "")
    if not value:
        raise FetchError(
            f"secret {settings.FEED_SECRETS_PREFIX}{feed.auth_secret_name.upper()} is not set"
        )
    return {"Authorization": value}


def feed_http_fetch(*, feed: Feed) -> FeedRun | None:
    """Conditional GET of the feed's URL; a new body becomes a run, 304 is nothing to do."""
    headers = {"Accept": "*/*", **_auth_header(feed)}
    if feed.http_etag:
        headers["If-None-Match"] = feed.http_etag
    if feed.http_last_modified:
        headers["If-Modified-Since"] = feed.http_last_modified
    limit = settings.INGEST_MAX_PAYLOAD_BYTES
    try:
        response = requests.get(
            feed.source_location,
            headers=headers,
            timeout=(5, settings.HTTP_FETCH_TIMEOUT),
            stream=True,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise FetchError(f"GET {feed.source_location} failed: {exc}") from exc
    with response:
        Feed.objects.filter(pk=feed.pk).update(last_checked_at=Now())
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise FetchError(f"GET {feed.source_location} answered HTTP {response.status_code}")
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > limit:
            raise FetchError(f"payload of {declared} bytes exceeds the limit of {limit} bytes")
        response.raw.decode_content = True
        try:
            run = feed_run_create(
                feed=feed,
                content=cast(IO[bytes], response.raw),
                original_name=feed.source_location.rsplit("/", 1)[-1][:300],
                source=FeedRun.Source.HTTP,
            )
        except PayloadTooLarge as exc:
            raise FetchError(str(exc)) from exc
        except requests.RequestException as exc:
            raise FetchError(f"reading {feed.source_location} failed: {exc}") from exc
        Feed.objects.filter(pk=feed.pk).update(
            http_etag=response.headers.get("ETag", "")[:200],
            http_last_modified=response.headers.get("Last-Modified", "")[:100],
        )
    return run


def feed_fetch(*, feed_id: int) -> list[FeedRun]:
    """What a scheduled feed does when it is due: pull from its transport."""
    feed = Feed.objects.select_related("warehouse").get(pk=feed_id)
    if not feed.active:
        return []
    if feed.transport == Feed.Transport.HTTP:
        run = feed_http_fetch(feed=feed)
        return [run] if run else []
    if feed.transport == Feed.Transport.DIRECTORY:
        return inbox_collect(feed=feed)
    return []


def feed_fetch_failed(*, feed_id: int, error: str) -> FeedRun:
    """Keep a failed fetch visible as a failed run of the feed."""
    now = timezone.now()
    return FeedRun.objects.create(
        feed_id=feed_id,
        source=FeedRun.Source.HTTP,
        status=FeedRun.Status.FAILED,
        error=error[:4000],
        started_at=now,
        finished_at=now,
    )


def feed_schedule_set(*, feed: Feed, every_seconds: int | None) -> PeriodicTask | None:
    """Create, change or remove the feed's django-celery-beat schedule (editable in the admin)."""
    if every_seconds is None:
        if feed.schedule_id:
            PeriodicTask.objects.filter(pk=feed.schedule_id).delete()
        return None
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every_seconds, period=IntervalSchedule.SECONDS
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=f"fetch feed {feed.code}",
        defaults={
            "task": "warehouses.tasks.fetch_feed",
            "interval": interval,
            "args": f"[{feed.pk}]",
            "enabled": feed.active,
        },
    )
    if feed.schedule_id != task.pk:
        Feed.objects.filter(pk=feed.pk).update(schedule=task)
        feed.schedule = task
    return task


# --- rejected-record triage (issue 5) --------------------------------------------------------

# Formats whose records are one line each under one header line: a replay payload is the
# original header plus the corrected lines.
_HEADER_FORMATS = frozenset(
    {Feed.Format.HUB_CSV, Feed.Format.PARTNER_CSV, Feed.Format.MANIFEST_CSV}
)
# Raw text over the parser's limit is stored clipped (parsers.encodings.clip): not replayable.
_CLIPPED = re.compile(r"… \[\d+ more chars\]\Z")


class ReplayError(Exception):
    pass


@dataclass(frozen=True)
class ReplayResult:
    runs: list[FeedRun]
    replayed: int
    skipped: list[tuple[int, str]]  # (reject id, why)


def _replay_encoding(run: FeedRun) -> encodings.Decoding:
    """The encoding the run's payload was read in (a run executed before runs stated it: the
    feed's, which was then always explicit)."""
    name = run.encoding or run.feed.encoding
    return encodings.Decoding(encodings.UTF8 if name == encodings.AUTO else name, detected=False)


def _payload_header(run: FeedRun, decoding: encodings.Decoding) -> bytes:
    """The first line of the run's stored payload as its parser read it (BOM kept; a UTF-16
    payload transcoded to UTF-8)."""
    try:
        with default_storage.open(run.payload_name, "rb") as raw:
            stream = encodings.reader(raw, decoding)
            line = stream.readline(settings.INGEST_MAX_LINE_BYTES + 1)
    except FileNotFoundError:
        raise ReplayError(f"payload of run {run.pk} is missing from storage") from None
    return line if line.endswith(b"\n") else line + b"\n"


def _replay_line(text: str, fmt: str) -> str:
    if fmt == Feed.Format.JSON:
        # JSON Lines: one object per line, even if the original sat pretty-printed in an array.
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            return " ".join(text.splitlines())  # rejected again, with the parser's reason
    return text


def rejected_records_replay(
    *, rejects: Iterable[RejectedRecord], enqueue: bool = True
) -> ReplayResult:
    """Send rejected records (their corrected text when there is one) through the pipeline again.

    1. Group them by their run: a payload belongs to one feed, and CSV needs that run's header.
    2. Payload = the original file's header line (CSV formats) + one record per line, encoded
       in the feed's encoding.
    3. `feed_run_create(source=REPLAY, reprocess=True)`: the same parser, normalizer and
       recorder; events dedupe against what is stored, so replaying twice creates nothing new.
    4. Mark the records `replayed_in` the new run.
    Records with nothing to replay (a file-level reject, clipped text not corrected) are skipped.
    """
    groups: dict[int, list[RejectedRecord]] = {}
    skipped: list[tuple[int, str]] = []
    for reject in sorted(rejects, key=lambda r: (r.run_id, r.line, r.pk)):
        text = reject.corrected_raw or reject.raw
        if not text.strip():
            skipped.append((reject.pk, "no raw text to replay"))
        elif not reject.corrected_raw and _CLIPPED.search(text):
            skipped.append((reject.pk, "raw text was clipped: correct it first"))
        else:
            groups.setdefault(reject.run_id, []).append(reject)
    runs: list[FeedRun] = []
    replayed = 0
    for run_id, group in groups.items():
        original = FeedRun.objects.select_related("feed").get(pk=run_id)
        feed = original.feed
        if feed.format not in _HEADER_FORMATS and feed.format != Feed.Format.JSON:
            skipped += [
                (r.pk, f"{feed.format} records cannot be replayed one by one: re-run the run")
                for r in group
            ]
            continue
        # The replay is written in the encoding the original was read in, and says so.
        decoding = _replay_encoding(original)
        target = decoding.parser_encoding
        header = _payload_header(original, decoding) if feed.format in _HEADER_FORMATS else b""
        body = "".join(
            _replay_line(r.corrected_raw or r.raw, feed.format).rstrip("\r\n") + "\n" for r in group
        )
        try:
            encoded = body.encode(target)
        except UnicodeEncodeError as exc:
            raise ReplayError(f"corrected text does not fit the run's {target}") from exc
        lines = ",".join(str(r.line) for r in group[:20]) + ("…" if len(group) > 20 else "")
        with transaction.atomic():
            run = feed_run_create(
                feed=feed,
                content=io.BytesIO(header + encoded),
                original_name=f"replay of run {run_id} lines {lines}",
                source=FeedRun.Source.REPLAY,
                reprocess=True,
                enqueue=enqueue,
                encoding=target,
            )
            RejectedRecord.objects.filter(pk__in=[r.pk for r in group]).update(replayed_in=run)
        runs.append(run)
        replayed += len(group)
    return ReplayResult(runs=runs, replayed=replayed, skipped=skipped)


def feed_run_rerun(*, run_id: int, enqueue: bool = True) -> FeedRun:
    """Run a stored payload again (after fixing the feed's mapping); events dedupe."""
    original = FeedRun.objects.select_related("feed").get(pk=run_id)
    if not original.payload_name:
        raise ReplayError(f"run {run_id} has no stored payload")
    try:
        with transaction.atomic(), default_storage.open(original.payload_name, "rb") as stream:
            run = feed_run_create(
                feed=original.feed,
                content=stream,
                original_name=original.original_name,
                source=FeedRun.Source.REPLAY,
                reprocess=True,
                enqueue=enqueue,
            )
            RejectedRecord.objects.filter(run_id=run_id, replayed_in__isnull=True).update(
                replayed_in=run
            )
    except FileNotFoundError:
        raise ReplayError(f"payload of run {run_id} is missing from storage") from None
    return run
