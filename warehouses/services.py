"""Every write on the sources side: storing payloads, creating and executing runs, fetching.

A run moves queued -> running -> succeeded | partial | failed (or is born `duplicate`). It is
executed batch by batch; each batch's events, rejects and the run's checkpoint commit together,
so a worker killed mid-run is resumed by the next attempt exactly where the last commit left it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import requests
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from shipments.recording import EventInput, events_record
from warehouses import ingest_kinds
from warehouses.formats import get_parser
from warehouses.formats.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.models import Feed, FeedRun, RejectedRecord, Warehouse
from warehouses.normalize import FeedContext, normalize_event

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
) -> FeedRun:
    """Store the payload and create its run; the same payload on the same feed is a no-op run.

    With `reprocess`, a payload seen before is run again (its events dedupe): operators use it
    after fixing a feed's mapping.
    """
    stored = payload_store(content=content)
    fields = {
        "feed": feed,
        "source": source,
        "original_name": original_name[:300],
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
        from warehouses.tasks import ingest_run

        transaction.on_commit(lambda: ingest_run.delay(run.pk))
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


def feed_context(feed: Feed) -> FeedContext:
    warehouse: Warehouse = feed.warehouse
    return FeedContext(
        code_mapping={str(k): str(v) for k, v in (feed.code_mapping or {}).items()},
        unknown_code_policy=feed.unknown_code_policy,
        warehouse_timezone=warehouse.timezone,
        feed_timezone=feed.default_timezone,
        warehouse_name=warehouse.city or warehouse.name,
        warehouse_locode=warehouse.unlocode,
        warehouse_country=warehouse.country,
        identifier_mapping={str(k): str(v) for k, v in (feed.identifier_mapping or {}).items()},
    )


@dataclass
class _Batch:
    events: list[EventInput] = field(default_factory=list)
    rejects: list[RecordError] = field(default_factory=list)
    # memberships, shipment facts, customs documents, retractions: see warehouses/ingest_kinds.py
    others: list[Record] = field(default_factory=list)
    count: int = 0

    def add(self, item: ParseItem, ctx: FeedContext) -> None:
        self.count += 1
        if isinstance(item, RecordError):
            self.rejects.append(item)
            return
        if item.kind != "event" or ingest_kinds.event_needs_apply(item):
            # Events that need the database before they can be normalized (EDI interchange
            # history, EPC identifier mapping, CEB receipts naming only a declaration number)
            # are resolved set-based in ingest_kinds.records_apply, which adds them to events.
            self.others.append(item)
            return
        try:
            result = normalize_event(item, ctx)
        except Exception as exc:
            # A normalizer bug must cost one record, never the run; the log has the traceback.
            logger.exception("normalizing line %s failed", item.line)
            result = RecordError(
                line=item.line, raw=item.raw, field="", reason=f"internal error: {exc!r}"
            )
        if isinstance(result, RecordError):
            self.rejects.append(result)
        else:
            self.events.append(result)

    def clear(self) -> None:
        self.events, self.rejects, self.others, self.count = [], [], [], 0


def _flush(run: FeedRun, batch: _Batch, processed: int) -> None:
    """Commit one batch: events, rejects and the run's checkpoint in one transaction."""
    if not batch.count:
        return
    with transaction.atomic():
        if batch.others:
            # Memberships and shipment facts first, so events of this batch see them.
            batch.rejects += ingest_kinds.records_apply(
                run=run, records=batch.others, ctx=feed_context(run.feed), events=batch.events
            )
        result = events_record(
            events=batch.events,
            feed_id=run.feed_id,
            run_id=run.pk,
            warehouse_id=run.feed.warehouse_id,
        )
        rejects = [
            RejectedRecord(
                run_id=run.pk,
                line=r.line,
                field=r.field[:100],
                reason=r.reason[:2000],
                raw=r.raw,
            )
            for r in batch.rejects
        ]
        rejects += [
            RejectedRecord(
                run_id=run.pk,
                line=line,
                field="",
                reason=f"duplicate row: the same event as line {first} of this file (kept once)",
                raw="",
            )
            for line, first in result.repeated_lines
        ]
        if rejects:
            RejectedRecord.objects.bulk_create(rejects, ignore_conflicts=True)
        FeedRun.objects.filter(pk=run.pk).update(
            records_processed=processed,
            records=F("records") + batch.count,
            events_created=F("events_created") + result.created,
            duplicates=F("duplicates") + result.duplicates,
            rejected=F("rejected") + len(rejects),
        )
    batch.clear()


def _records(run: FeedRun, stream: IO[bytes]) -> Iterator[ParseItem]:
    """The parser's items; a fatal format error becomes one last reject (earlier ones are kept)."""
    feed = run.feed
    options = ParseOptions(
        encoding=feed.encoding,
        column_mapping=feed.column_mapping or {},
        max_line_bytes=settings.INGEST_MAX_LINE_BYTES,
    )
    parser = get_parser(feed.format)
    try:
        yield from parser(stream, options)
    except FormatError as exc:
        yield RecordError(line=exc.line, raw=exc.raw, field=exc.field, reason=exc.reason)


def feed_run_execute(*, run_id: int, progress: Callable[[FeedRun], None] | None = None) -> FeedRun:
    """Execute a run (idempotent): claim it, stream parse -> normalize -> record, finish it.

    Raises FeedBusy when another run of the same feed holds the feed's lock.
    """
    run = FeedRun.objects.select_related("feed__warehouse").get(pk=run_id)
    if run.status not in (FeedRun.Status.QUEUED, FeedRun.Status.RUNNING):
        return run
    with _feed_lock(run.feed_id) as locked:
        if not locked:
            raise FeedBusy(f"feed {run.feed_id} is busy")
        # Holding the feed lock, a `running` run is one whose worker died: resume it.
        claimed = FeedRun.objects.filter(
            pk=run_id, status__in=[FeedRun.Status.QUEUED, FeedRun.Status.RUNNING]
        ).update(
            status=FeedRun.Status.RUNNING,
            started_at=Coalesce(F("started_at"), Now()),
            attempts=F("attempts") + 1,
        )
        if not claimed:
            run.refresh_from_db()
            return run
        run.refresh_from_db()
        _execute(run, progress)
    run.refresh_from_db()
    return run


def _execute(run: FeedRun, progress: Callable[[FeedRun], None] | None) -> None:
    ctx = feed_context(run.feed)
    batch = _Batch()
    skip = run.records_processed
    index = 0
    error = ""
    batch_size = settings.INGEST_BATCH_SIZE
    try:
        with default_storage.open(run.payload_name, "rb") as stream:
            for item in _records(run, stream):
                index += 1
                if index <= skip:
                    continue
                batch.add(item, ctx)
                if batch.count >= batch_size:
                    _flush(run, batch, index)
                    if progress:
                        run.refresh_from_db()
                        progress(run)
    except FileNotFoundError:
        error = f"payload {run.payload_name} is missing from storage"
    _flush(run, batch, index)
    _finish(run, error)


def _finish(run: FeedRun, error: str) -> None:
    run.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT shipment_id) FROM shipments_trackingevent WHERE run_id = %s",
            [run.pk],
        )
        (touched,) = cursor.fetchone()
    good = run.events_created + run.duplicates
    if error or (run.rejected and not good):
        status = FeedRun.Status.FAILED
    elif run.rejected:
        status = FeedRun.Status.PARTIAL
    else:
        status = FeedRun.Status.SUCCEEDED
    FeedRun.objects.filter(pk=run.pk).update(
        status=status,
        error=error or run.error,
        shipments_touched=touched,
        finished_at=Now(),
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


def feed_run_fail(*, run_id: int, error: str) -> None:
    """Give up on a run after its retries (the error stays on the run for operators)."""
    FeedRun.objects.filter(
        pk=run_id, status__in=[FeedRun.Status.QUEUED, FeedRun.Status.RUNNING]
    ).update(status=FeedRun.Status.FAILED, error=error[:4000], finished_at=Now())


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
