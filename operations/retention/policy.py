"""The retention policy: export a month's old delivered and returned parcels, then remove them.

Per period (the UTC month of the parcel's last event):
1. Read what the period's file already holds (a previous run's), keeping the parcels no longer
   in the database; add this run's parcels from the database. The file then holds every parcel
   removed from that month, once.
2. Write it (`archive_replace`: staged, read back, counted) unless it already holds exactly that.
3. Only then remove the parcels, in batches, each batch one transaction of a few statements.
A crash anywhere leaves the parcels in the database or in a whole file, and the next run ends
the work: the file names are fixed, and step 1 recognises its own earlier output.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from django.conf import settings
from django.core.files.storage import Storage
from django.db import connection
from django.utils import timezone

from config.db import session_lock
from operations.retention import archive, export, partitions, removal
from shipments.statuses import Status

logger = logging.getLogger(__name__)
T = TypeVar("T")

_LOCK = (72_615, 2)
# Terminal statuses whose parcels retention removes: delivered, and returned (the return codes,
# `returning` and `returned`, both set it; a parcel still "returning" after RETENTION_DAYS of
# silence is as finished as one that arrived back).
RETAINED_STATUSES = [str(Status.DELIVERED), str(Status.RETURNED)]

# Old enough: nothing heard for RETENTION_DAYS, and in the hub for as long (a backfill of old
# events recorded yesterday stays for a while; the dashboard counts it by its creation day).
_CANDIDATES = """
FROM shipments_shipment s
WHERE s.status = ANY(%(statuses)s) AND s.last_event_at < %(cutoff)s AND s.created_at < %(cutoff)s
"""
_PERIODS_SQL = f"""
SELECT (date_trunc('month', s.last_event_at AT TIME ZONE 'UTC'))::date, count(*)
{_CANDIDATES} GROUP BY 1 ORDER BY 1
"""
_PERIOD_IDS_SQL = f"""
SELECT s.id {_CANDIDATES}
  AND s.last_event_at >= %(start)s AND s.last_event_at < %(end)s
ORDER BY s.id
"""


@dataclass
class PeriodResult:
    period: date
    name: str
    candidates: int
    in_file: int = 0
    written: bool = False
    removed: int = 0
    error: str = ""
    # Left for the next run: this one had spent its time (`seconds`) on older months.
    deferred: bool = False


@dataclass
class RetentionResult:
    cutoff: datetime | None
    periods: list[PeriodResult] = field(default_factory=list)
    # Monthly event partitions dropped whole (operations.retention.partitions).
    dropped_partitions: list[str] = field(default_factory=list)
    locked: bool = True

    @property
    def removed(self) -> int:
        return sum(p.removed for p in self.periods)


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    # itertools.batched arrives with Python 3.12; the hub runs on 3.11.
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _month_bounds(period: date) -> tuple[datetime, datetime]:
    start = datetime(period.year, period.month, 1, tzinfo=timezone.get_fixed_timezone(0))
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _run_lock() -> AbstractContextManager[bool]:
    """One run at a time: two would write the same files. Behind a transaction pooler the
    session lock is no guard; the daily schedule is then the only one (docs/retention.md)."""
    return session_lock(*_LOCK)


def retention_apply(
    *,
    days: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    seconds: float | None = None,
) -> RetentionResult:
    """Apply the policy (RETENTION_DAYS unless `days`); nothing when it is off.

    A period that fails (a damaged file, a storage error) is reported with its reason and the
    run goes on with the next: its parcels stay in the database. With `seconds`, no month is
    begun after that long (the oldest is always done): the removal of the months exported
    still runs, and the next run takes the rest, so a long history is worked through in steps
    that each end in time.
    """
    days = settings.RETENTION_DAYS if days is None else days
    if days is None:
        return RetentionResult(cutoff=None)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    params: dict[str, Any] = {"statuses": RETAINED_STATUSES, "cutoff": cutoff}
    result = RetentionResult(cutoff=cutoff)
    with _run_lock() as locked:
        if not locked:
            result.locked = False
            return result
        with connection.cursor() as cursor:
            cursor.execute(_PERIODS_SQL, params)
            periods = cursor.fetchall()
        result.periods = [
            PeriodResult(period=period, name=archive.period_name(period), candidates=count)
            for period, count in periods
        ]
        if not dry_run:
            _apply(result, params, deadline=None if seconds is None else time.monotonic() + seconds)
    return result


def _apply(result: RetentionResult, params: dict[str, Any], *, deadline: float | None) -> None:
    """Every month's file first, then the removal: a month's parcels go only once its file is
    verified, and whole event partitions can go only once every month they touch is exported."""
    storage = archive.retention_storage()
    exported: dict[date, list[export.Exported]] = {}
    for number, outcome in enumerate(result.periods):
        if number and deadline is not None and time.monotonic() > deadline:
            outcome.deferred = True
            continue
        try:
            exported[outcome.period] = _export_period(storage, outcome, params)
        except (archive.ArchiveError, OSError) as exc:
            outcome.error = str(exc)
            logger.error("retention: %s kept in the database: %s", outcome.name, exc)
    everything = [item for items in exported.values() for item in items]
    dropped = partitions.partitions_drop(everything, cutoff=params["cutoff"])
    result.dropped_partitions = dropped.partitions
    for outcome in result.periods:
        items = exported.get(outcome.period, [])
        rest = [item for item in items if item.shipment_id not in dropped.shipment_ids]
        outcome.removed = len(items) - len(rest)
        for batch in _batched(rest, settings.RETENTION_BATCH):
            outcome.removed += removal.shipments_remove(batch)
        logger.info(
            "retention: %s holds %s parcels; %s removed from the database",
            outcome.name,
            outcome.in_file,
            outcome.removed,
        )


def _export_period(
    storage: Storage, outcome: PeriodResult, params: dict[str, Any]
) -> list[export.Exported]:
    """Write the period's file (unless it already holds exactly this); what to remove."""
    start, end = _month_bounds(outcome.period)
    with connection.cursor() as cursor:
        cursor.execute(_PERIOD_IDS_SQL, {**params, "start": start, "end": end})
        ids = [row[0] for row in cursor.fetchall()]
    chunk = settings.RETENTION_BATCH
    previous = archive.previous_name(storage, outcome.name)
    writer = archive.ArchiveWriter(outcome.period)
    if previous is not None:
        for lines in _batched(archive.archive_lines(storage, previous), chunk):
            present = export.shipments_present([tracking_number for tracking_number, _ in lines])
            for tracking_number, line in lines:
                if tracking_number not in present:
                    writer.add(tracking_number, line)
    exported: list[export.Exported] = []
    for id_chunk in _batched(ids, chunk):
        for item, tracking_number, line in export.shipments_export_chunk(id_chunk):
            writer.add(tracking_number, line)
            exported.append(item)
    content = writer.finish()
    try:
        unchanged = previous == outcome.name and (
            archive.archive_summary(storage, outcome.name) == writer.summary
        )
        if not unchanged:
            archive.archive_replace(storage, outcome.name, content, writer.summary)
            outcome.written = True
    finally:
        content.close()
    outcome.in_file = writer.summary.shipments
    return exported
