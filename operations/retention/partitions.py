"""Whole months of events go by dropping their partition, not by deleting rows.

The events table is partitioned by month of occurred_at (shipments/partitions.py). Once every
month's file is verified, a monthly partition that ended before the cutoff and whose every
event belongs to a parcel or transport unit this run removes is detached and dropped. That
costs a catalogue change instead of a delete per row, and leaves no dead rows for vacuum. The
parcels and units with events there go in the same transaction, so none is ever left with part
of its events:

1. Take the events table in SHARE ROW EXCLUSIVE mode. Writers wait until the commit (no event
   can land in a month being judged); readers go on.
2. Judge each old month with one anti-join over its partition. An event of a unit or a parcel
   that stays keeps the month.
3. Lock the parcels with events in the dropped months, and the members of the units with events
   there, still as exported (removal's rule). If one changed since its export, drop nothing:
   the run falls back to deleting rows.
4. Delete those parcels and their rows, then those units (memberless by then, else step 3's
   fallback), except their events in the dropped months; then DETACH and DROP the partitions.
   The DETACH waits at most `LOCK_TIMEOUT` for readers, or the whole step rolls back and the
   rows are deleted instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from psycopg import sql

from operations.retention.export import Exported, ExportedUnit
from operations.retention.removal import shipments_delete, shipments_lock, units_delete
from shipments.partitions import EVENTS_TABLE, LOCK_TIMEOUT, Partition, partitions_list

logger = logging.getLogger(__name__)

_REMOVING = """
DROP TABLE IF EXISTS retention_removing, retention_removing_units;
CREATE TEMP TABLE retention_removing ON COMMIT DROP AS
SELECT id FROM unnest(%(ids)s::bigint[]) AS r(id);
ALTER TABLE retention_removing ADD PRIMARY KEY (id);
CREATE TEMP TABLE retention_removing_units ON COMMIT DROP AS
SELECT id FROM unnest(%(unit_ids)s::bigint[]) AS r(id);
ANALYZE retention_removing, retention_removing_units
"""

# The partitions holding events of this run's parcels (through the (shipment, occurred_at)
# index: the rows a delete would visit anyway).
_TOUCHED = """
SELECT e.tableoid::regclass::text
FROM shipments_trackingevent e JOIN retention_removing r ON r.id = e.shipment_id
UNION
SELECT e.tableoid::regclass::text
FROM shipments_trackingevent e JOIN retention_removing_units r ON r.id = e.unit_id
"""

# Only the parcels and units of this run in it. An event of a unit that stays keeps the month
# (the partial unit index answers that at once, so a month kept by its units costs no scan);
# else one anti-join over the parcels' events.
_WHOLLY_REMOVED = """
SELECT CASE WHEN EXISTS (
                SELECT 1 FROM {partition} e WHERE e.unit_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retention_removing_units r WHERE r.id = e.unit_id))
            THEN false
            ELSE NOT EXISTS (
                SELECT 1 FROM {partition} e
                WHERE e.unit_id IS NULL
                AND NOT EXISTS (SELECT 1 FROM retention_removing r WHERE r.id = e.shipment_id))
       END
"""

# The parcels to delete with the months: those with events there, and the members of the units
# with events there (a unit goes only with its last member).
_INSIDE = """
SELECT e.shipment_id FROM {partition} e WHERE e.shipment_id IS NOT NULL
UNION
SELECT m.shipment_id FROM {partition} e
JOIN shipments_unitmembership m ON m.unit_id = e.unit_id
"""


class _Changed(Exception):
    """A parcel with events in a month to drop changed since its export."""


@dataclass
class Dropped:
    partitions: list[str] = field(default_factory=list)
    shipment_ids: set[int] = field(default_factory=set)
    unit_ids: set[int] = field(default_factory=set)


def _identifier(name: str) -> str:
    return sql.Identifier(name).as_string(connection.connection)


def _droppable(cursor: CursorWrapper, cutoff: datetime) -> list[Partition]:
    cursor.execute(_TOUCHED)
    touched = {row[0] for row in cursor.fetchall()}
    months = [
        p for p in partitions_list() if p.end is not None and p.end <= cutoff and p.name in touched
    ]
    found = []
    for month in months:
        cursor.execute(_WHOLLY_REMOVED.format(partition=_identifier(month.name)))
        if cursor.fetchone()[0]:
            found.append(month)
    return found


def _drop(
    cursor: CursorWrapper, exported: list[Exported], units: list[ExportedUnit], cutoff: datetime
) -> Dropped:
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    for statement in _REMOVING.split(";\n"):
        cursor.execute(
            statement,
            {
                "ids": [item.shipment_id for item in exported],
                "unit_ids": [unit.unit_id for unit in units],
            },
        )
    cursor.execute(f"LOCK TABLE {EVENTS_TABLE} IN SHARE ROW EXCLUSIVE MODE")
    months = _droppable(cursor, cutoff)
    if not months:
        return Dropped()
    names = [_identifier(month.name) for month in months]
    cursor.execute(" UNION ".join(_INSIDE.format(partition=name) for name in names))
    inside = {row[0] for row in cursor.fetchall()}
    ids = shipments_lock(cursor, [item for item in exported if item.shipment_id in inside])
    if len(ids) != len(inside):
        raise _Changed
    cursor.execute(
        " UNION ".join(f"SELECT unit_id FROM {name} WHERE unit_id IS NOT NULL" for name in names)
    )
    unit_ids = {row[0] for row in cursor.fetchall()}
    ranges = [(month.start, month.end) for month in months if month.start and month.end]
    shipments_delete(cursor, ids, dropped=ranges)
    there = [unit for unit in units if unit.unit_id in unit_ids]
    gone = units_delete(cursor, there, dropped=ranges)
    if len(gone) != len(unit_ids):
        raise _Changed
    for month in months:
        name = _identifier(month.name)
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return Dropped(
        partitions=[month.name for month in months], shipment_ids=set(ids), unit_ids=unit_ids
    )


def partitions_drop(
    exported: list[Exported], units: list[ExportedUnit], *, cutoff: datetime
) -> Dropped:
    """Drop the old months that hold only events of `exported` parcels and `units`, with those
    parcels and units.
    Nothing when the table is not partitioned, no month qualifies, or a lock is not granted."""
    old = any(p.end is not None and p.end <= cutoff for p in partitions_list())
    if not (exported or units) or not old:
        return Dropped()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            dropped = _drop(cursor, exported, units, cutoff)
    except _Changed:
        logger.info("retention: a parcel changed since its export; deleting rows instead")
        return Dropped()
    except OperationalError as exc:
        logger.warning("retention: partitions kept, deleting rows instead: %s", exc)
        return Dropped()
    if dropped.partitions:
        logger.info(
            "retention: dropped %s with %s parcels and %s units",
            ", ".join(dropped.partitions),
            len(dropped.shipment_ids),
            len(dropped.unit_ids),
        )
    return dropped
