"""The retention policy: export a month's old delivered and returned parcels, then remove them.

Per period (the UTC month of the parcel's last event):
1. Read what the period's file already holds (a previous run's), keeping the parcels no longer
   in the database; add this run's parcels from the database. The file then holds every parcel
   removed from that month, once.
2. Write it (`archive_replace`: staged, read back, counted) unless it already holds exactly that.
3. Only then remove the parcels, in batches, each batch one transaction of a few statements;
   then the month's transport units their parcels' removal left without members.
A transport unit is filed with the month of its own last event once that is before the cutoff
and every parcel still in it is one this run removes (or none is left).
A crash anywhere leaves the parcels in the database or in a whole file, and the next run ends
the work: the file names are fixed, and step 1 recognises its own earlier output.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage
from django.db import connection
from django.utils import timezone

from config.db import session_lock
from operations.retention import archive, export, partitions, removal
from shipments.statuses import Status

logger = logging.getLogger(__name__)

_LOCK = (72_615, 2)
# Terminal statuses whose parcels retention removes: delivered, and returned (the return codes,
# `returning` and `returned`, both set it; a parcel still "returning" after RETENTION_DAYS of
# silence is as finished as one that arrived back).
RETAINED_STATUSES = [str(Status.DELIVERED), str(Status.RETURNED)]

# Old enough: nothing heard for RETENTION_DAYS, and in the hub for as long (a backfill of old
# events recorded yesterday stays for a while; the dashboard counts it by its creation day).
_RETAINED = (
    "s.status = ANY(%(statuses)s) AND s.last_event_at < %(cutoff)s AND s.created_at < %(cutoff)s"
)
_CANDIDATES = f"""
FROM shipments_shipment s
WHERE {_RETAINED}
"""
# A unit's time is its own last event (its creation while it has none); a member parcel that
# stays keeps it (IS NOT TRUE: a parcel with no event yet stays too).
_UNIT_CANDIDATES = f"""
FROM shipments_transportunit u
CROSS JOIN LATERAL (SELECT coalesce(max(e.occurred_at), u.created_at) AS at
                    FROM shipments_trackingevent e WHERE e.unit_id = u.id) l
WHERE l.at < %(cutoff)s AND NOT EXISTS (
    SELECT 1 FROM shipments_unitmembership m JOIN shipments_shipment s ON s.id = m.shipment_id
    WHERE m.unit_id = u.id AND ({_RETAINED}) IS NOT TRUE)
"""
# The months with parcels (counted) or units to file.
_PERIODS_SQL = f"""
SELECT period, sum(n) FROM (
    SELECT (date_trunc('month', s.last_event_at AT TIME ZONE 'UTC'))::date AS period, 1 AS n
    {_CANDIDATES}
    UNION ALL
    SELECT (date_trunc('month', l.at AT TIME ZONE 'UTC'))::date, 0 {_UNIT_CANDIDATES}
) c GROUP BY 1 ORDER BY 1
"""
_PERIOD_UNIT_IDS_SQL = f"""
SELECT u.id {_UNIT_CANDIDATES} AND l.at >= %(start)s AND l.at < %(end)s ORDER BY u.id
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
    units_in_file: int = 0
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
    # Transport units removed (with their events), by either way.
    removed_units: int = 0

    @property
    def removed(self) -> int:
        return sum(p.removed for p in self.periods)


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
    units: list[export.ExportedUnit] = []
    for number, outcome in enumerate(result.periods):
        if number and deadline is not None and time.monotonic() > deadline:
            outcome.deferred = True
            continue
        try:
            exported[outcome.period], period_units = _export_period(storage, outcome, params)
        except (archive.ArchiveError, OSError) as exc:
            outcome.error = str(exc)
            logger.error("retention: %s kept in the database: %s", outcome.name, exc)
        else:
            units += period_units
    everything = [item for items in exported.values() for item in items]
    dropped = partitions.partitions_drop(everything, units, cutoff=params["cutoff"])
    result.dropped_partitions = dropped.partitions
    for outcome in result.periods:
        items = exported.get(outcome.period, [])
        rest = [item for item in items if item.shipment_id not in dropped.shipment_ids]
        outcome.removed = len(items) - len(rest)
        for batch in archive.batched(rest, settings.RETENTION_BATCH):
            outcome.removed += removal.shipments_remove(batch)
        logger.info(
            "retention: %s holds %s parcels; %s removed from the database",
            outcome.name,
            outcome.in_file,
            outcome.removed,
        )
    # After every batch: a unit's parcels may be in several batches and months. A crash before
    # this leaves memberless units, which the next run exports and removes.
    rest_units = [unit for unit in units if unit.unit_id not in dropped.unit_ids]
    result.removed_units = len(dropped.unit_ids) + removal.units_remove(rest_units)


def _absent(lines: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The records of a previous file whose parcel or unit the database no longer holds."""
    present: dict[str, set[str]] = {}
    for kind, lookup in (("shipment", export.shipments_present), ("unit", export.units_present)):
        keys = [key for found, key, _line in lines if found == kind]
        present[kind] = lookup(keys) if keys else set()
    return [(kind, key, line) for kind, key, line in lines if key not in present[kind]]


def _export_period(
    storage: Storage, outcome: PeriodResult, params: dict[str, Any]
) -> tuple[list[export.Exported], list[export.ExportedUnit]]:
    """Write the period's file (unless it already holds exactly this); what to remove."""
    start, end = _month_bounds(outcome.period)
    with connection.cursor() as cursor:
        cursor.execute(_PERIOD_IDS_SQL, {**params, "start": start, "end": end})
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(_PERIOD_UNIT_IDS_SQL, {**params, "start": start, "end": end})
        unit_ids = [row[0] for row in cursor.fetchall()]
    chunk = settings.RETENTION_BATCH
    previous = archive.previous_name(storage, outcome.name)
    writer = archive.ArchiveWriter(outcome.period)
    if previous is not None:
        for lines in archive.batched(archive.archive_lines(storage, previous), chunk):
            for kind, key, line in _absent(lines):
                writer.add(kind, key, line)
    exported: list[export.Exported] = []
    for id_chunk in archive.batched(ids, chunk):
        for item, tracking_number, line in export.shipments_export_chunk(id_chunk):
            writer.add("shipment", tracking_number, line)
            exported.append(item)
    units: list[export.ExportedUnit] = []
    for id_chunk in archive.batched(unit_ids, chunk):
        for unit, number, line in export.units_export(id_chunk):
            writer.add("unit", number, line)
            units.append(unit)
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
    outcome.units_in_file = writer.summary.units
    return exported, units
