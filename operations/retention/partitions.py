"""Whole months of events go by dropping their partition, not by deleting rows.

The events table is partitioned by month of occurred_at (shipments/partitions.py). Once every
month's file is verified, a monthly partition that ended before the cutoff and whose every
event belongs to a parcel this run removes is detached and dropped. That costs a catalogue
change instead of a delete per row, and leaves no dead rows for vacuum. The parcels with events
there go in the same transaction, so no parcel is ever left with part of its events:

1. Take the events table in SHARE ROW EXCLUSIVE mode. Writers wait until the commit (no event
   can land in a month being judged); readers go on.
2. Judge each old month with one anti-join over its partition. A unit's event, or a parcel that
   stays, keeps the month.
3. Lock the parcels with events in the dropped months, still as exported (removal's rule). If
   one changed since its export, drop nothing: the run falls back to deleting rows.
4. Delete those parcels and their rows, except their events in the dropped months, then DETACH
   and DROP the partitions. The DETACH waits at most `LOCK_TIMEOUT` for readers, or the whole
   step rolls back and the rows are deleted instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from psycopg import sql

from operations.retention.export import Exported
from operations.retention.removal import shipments_delete, shipments_lock
from shipments.partitions import EVENTS_TABLE, LOCK_TIMEOUT, Partition, partitions_list

logger = logging.getLogger(__name__)

_REMOVING = """
DROP TABLE IF EXISTS retention_removing;
CREATE TEMP TABLE retention_removing ON COMMIT DROP AS
SELECT id FROM unnest(%(ids)s::bigint[]) AS r(id);
ALTER TABLE retention_removing ADD PRIMARY KEY (id);
ANALYZE retention_removing
"""

# The partitions holding events of this run's parcels (through the (shipment, occurred_at)
# index: the rows a delete would visit anyway).
_TOUCHED = """
SELECT DISTINCT e.tableoid::regclass::text
FROM shipments_trackingevent e JOIN retention_removing r ON r.id = e.shipment_id
"""

# Only the parcels of this run in it. A unit's event keeps the month (the partial unit index
# answers that at once, so a month kept by its units costs no scan); else one anti-join.
_WHOLLY_REMOVED = """
SELECT CASE WHEN EXISTS (SELECT 1 FROM {partition} e WHERE e.unit_id IS NOT NULL) THEN false
            ELSE NOT EXISTS (
                SELECT 1 FROM {partition} e
                WHERE NOT EXISTS (SELECT 1 FROM retention_removing r WHERE r.id = e.shipment_id))
       END
"""


class _Changed(Exception):
    """A parcel with events in a month to drop changed since its export."""


@dataclass
class Dropped:
    partitions: list[str] = field(default_factory=list)
    shipment_ids: set[int] = field(default_factory=set)


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


def _drop(cursor: CursorWrapper, exported: list[Exported], cutoff: datetime) -> Dropped:
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    for statement in _REMOVING.split(";\n"):
        cursor.execute(statement, {"ids": [item.shipment_id for item in exported]})
    cursor.execute(f"LOCK TABLE {EVENTS_TABLE} IN SHARE ROW EXCLUSIVE MODE")
    months = _droppable(cursor, cutoff)
    if not months:
        return Dropped()
    cursor.execute(
        " UNION ".join(f"SELECT shipment_id FROM {_identifier(month.name)}" for month in months)
    )
    inside = {row[0] for row in cursor.fetchall()}
    ids = shipments_lock(cursor, [item for item in exported if item.shipment_id in inside])
    if len(ids) != len(inside):
        raise _Changed
    ranges = [(month.start, month.end) for month in months if month.start and month.end]
    shipments_delete(cursor, ids, dropped=ranges)
    for month in months:
        name = _identifier(month.name)
        cursor.execute(f"ALTER TABLE {EVENTS_TABLE} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return Dropped(partitions=[month.name for month in months], shipment_ids=set(ids))


def partitions_drop(exported: list[Exported], *, cutoff: datetime) -> Dropped:
    """Drop the old months that hold only events of `exported` parcels, with those parcels.
    Nothing when the table is not partitioned, no month qualifies, or a lock is not granted."""
    if not exported or not any(p.end is not None and p.end <= cutoff for p in partitions_list()):
        return Dropped()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            dropped = _drop(cursor, exported, cutoff)
    except _Changed:
        logger.info("retention: a parcel changed since its export; deleting rows instead")
        return Dropped()
    except OperationalError as exc:
        logger.warning("retention: partitions kept, deleting rows instead: %s", exc)
        return Dropped()
    if dropped.partitions:
        logger.info(
            "retention: dropped %s with %s parcels",
            ", ".join(dropped.partitions),
            len(dropped.shipment_ids),
        )
    return dropped
