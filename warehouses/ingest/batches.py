"""A run's batches: records collected, then committed together with the run's checkpoint.

A batch's events, rejects, other records and the run's checkpoint commit in one transaction, so
a worker killed mid-run is resumed by the next attempt exactly where the last commit left it.
A batch that fails on one record's value (a value PostgreSQL refuses) is recorded again in
halves, down to the records the database refuses, which become rejects (`_isolate`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Now
from psycopg import errors as psycopg_errors

from shipments.partitions import partition_names_hidden
from shipments.recording import EventInput, PreparedEvents, events_prepare, events_record_start
from shipments.recording.pipelining import PendingCommit
from warehouses.ingest.apply import event_needs_apply, records_apply
from warehouses.models import FeedRun, RejectedRecord
from warehouses.normalize import storable
from warehouses.normalize.context import FeedContext, feed_context
from warehouses.normalize.events import normalize_event
from warehouses.parsers.base import ParseItem, Record, RecordError

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """One batch's records as they are parsed: events normalised on the way in, rejects, and
    the records that need the database first (`others`, applied when the batch is recorded)."""

    events: list[EventInput] = field(default_factory=list)
    rejects: list[RecordError] = field(default_factory=list)
    # memberships, shipment facts, customs documents, retractions: see warehouses/ingest/apply/
    others: list[Record] = field(default_factory=list)
    count: int = 0

    def add(self, item: ParseItem, ctx: FeedContext) -> None:
        """Sort one parsed item into the batch; a record the normaliser refuses is a reject."""
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

    def copy(self) -> Batch:
        """The batch as it is now (recording it appends to its lists)."""
        return Batch(list(self.events), list(self.rejects), list(self.others), self.count)


# Errors that belong to the values of a batch's records rather than to the database or the
# code: SQLSTATE class 22 (data exception: NUL, bad encoding, string or numeric overflow,
# invalid text representation, datetime overflow), 23514 (a CHECK constraint), and psycopg's
# refusal to send text it cannot encode. A batch failing with one is recorded in halves
# (`_isolate`); any other error fails the batch whole.
_RECORD_ERRORS = (psycopg_errors.DataError, psycopg_errors.CheckViolation, UnicodeEncodeError)


def record_error(exc: BaseException) -> BaseException | None:
    """The record-level error behind `exc` (Django wraps psycopg's errors), or None."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, _RECORD_ERRORS):
            return candidate
    return None


def flush(run: FeedRun, batch: Batch, processed: int, pending: PendingCommit) -> None:
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
            if not record_error(exc):
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
        if pending.busy or not isinstance(exc, Exception) or not record_error(exc):
            raise
        _isolate(run, sent, processed, exc)
    batch.clear()


def _isolate(run: FeedRun, batch: Batch, processed: int, error: BaseException) -> None:
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
                    _record(run, Batch(events, [], others), processed, pending=None)
            except Exception as exc:
                cause = record_error(exc)
                if not cause:
                    raise
                if len(part) == 1:
                    refused.append(_refused(part[0], cause))
                else:
                    parts.extendleft(reversed(_halves(part)))
        if len(entries) > 1 and len(refused) == len(entries):
            _reraise(error)
        closing = Batch(rejects=[*batch.rejects, *refused], count=batch.count)
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
        reason=f"the database cannot store this record: {partition_names_hidden(message)}",
    )


def _record(
    run: FeedRun,
    batch: Batch,
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
