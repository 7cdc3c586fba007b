"""Unit memberships: a parcel loaded into a unit (container, ULD, pallet, train) and unloaded.

Loads, then unloads, set-based; then the status of every shipment they moved is recomputed
(membership decides which unit events a parcel's status counts). A load or unload whose
eventID was retracted before is not applied again (ingest/apply/retractions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import connection
from django.db.backends.utils import CursorWrapper

from shipments.models import TransportUnit
from shipments.recording import ShipmentFacts, shipments_recompute, shipments_upsert, units_upsert
from warehouses.ingest.apply.retractions import retracted_reject
from warehouses.ingest.apply.values import instant, parcel, reject, text, unit_number
from warehouses.normalize.context import FeedContext
from warehouses.normalize.events import rejected
from warehouses.parsers.base import Record, RecordError, RecordRejected

if TYPE_CHECKING:
    from warehouses.models import FeedRun

_UNIT_KINDS = frozenset(TransportUnit.Kind.values)

# Loads. A re-delivered load is a no-op (the unique (unit, shipment, loaded_at)); a manifest
# row that now carries unloaded_at closes the membership it opened earlier.
_INSERT_MEMBERSHIPS = """
WITH ins AS (
    INSERT INTO shipments_unitmembership AS m (
        unit_id, shipment_id, loaded_at, unloaded_at, load_feed_id, load_event_id,
        unload_feed_id, unload_event_id)
    SELECT u.id, s.id, x.loaded, x.unloaded, CASE WHEN x.eid <> '' THEN %s::bigint END, x.eid,
           NULL, ''
    FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])
         AS x(unit, tn, loaded, unloaded, eid)
    JOIN shipments_transportunit u ON u.number = x.unit
    JOIN shipments_shipment s ON s.tracking_number = x.tn
    ORDER BY u.id, s.id
    ON CONFLICT (unit_id, shipment_id, loaded_at) DO UPDATE SET unloaded_at = EXCLUDED.unloaded_at
    WHERE m.unloaded_at IS NULL AND EXCLUDED.unloaded_at IS NOT NULL
    RETURNING m.shipment_id
)
SELECT DISTINCT shipment_id FROM ins
"""

# Unloads close the open membership loaded before them; each membership takes the earliest
# unload after its load, so "loaded, unloaded, loaded again, unloaded" in one batch is right.
_CLOSE_MEMBERSHIPS = """
WITH x AS (
    SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])
             AS x(i, unit, tn, at, eid)
), target AS (
    SELECT DISTINCT ON (m.id) m.id, x.at, x.i, x.eid
    FROM x
    JOIN shipments_transportunit u ON u.number = x.unit
    JOIN shipments_unitmembership m
      ON m.unit_id = u.id AND m.unloaded_at IS NULL AND m.loaded_at <= x.at
    LEFT JOIN shipments_shipment s ON x.tn <> '' AND s.tracking_number = x.tn
    WHERE x.tn = '' OR m.shipment_id = s.id
    ORDER BY m.id, x.at
), closed AS (
    UPDATE shipments_unitmembership m SET unloaded_at = t.at,
           unload_feed_id = CASE WHEN t.eid <> '' THEN %s::bigint END, unload_event_id = t.eid
    FROM target t WHERE m.id = t.id
    RETURNING m.shipment_id, t.i
)
SELECT shipment_id, i FROM closed
"""

# Unloads that closed nothing: silent when the same unload was applied before (re-delivery).
_ALREADY_CLOSED = """
SELECT x.i
FROM unnest(%s::int[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])
     AS x(i, unit, tn, at, eid)
WHERE EXISTS (
    SELECT 1 FROM shipments_unitmembership m
    JOIN shipments_transportunit u ON u.id = m.unit_id
    LEFT JOIN shipments_shipment s ON s.id = m.shipment_id
    WHERE u.number = x.unit AND m.unloaded_at = x.at AND (x.tn = '' OR s.tracking_number = x.tn)
)
"""


class _Membership(NamedTuple):
    """One membership record, checked: a load (with or without its unload) or an unload."""

    unit: str
    kind: str
    tracking: str  # "" with every_child: an unload of the whole unit
    loaded: datetime | None
    unloaded: datetime | None


def _membership(record: Record, ctx: FeedContext) -> _Membership:
    """A membership record's unit, parcel and times, or RecordRejected naming the first problem."""
    unit = unit_number(record, ctx)
    if not unit:
        raise RecordRejected("missing unit_id", field="unit_id")
    kind = record.unit_kind.strip().lower() or "other"
    if kind not in _UNIT_KINDS:
        raise RecordRejected(
            f"unknown unit kind {kind!r} (expected one of {', '.join(sorted(_UNIT_KINDS))})",
            field="unit_kind",
        )
    tracking = parcel(record, ctx)
    every_child = bool(record.extra.get("all_children"))
    if not tracking and not every_child:
        raise RecordRejected(
            "missing tracking number of the unit's member", field="tracking_number"
        )
    has_load = record.event_time not in (None, "")
    has_unload = record.unloaded_at not in (None, "")
    if not has_load and not has_unload:
        raise RecordRejected("missing loaded_at (and no unloaded_at)", field="loaded_at")
    loaded = instant(record, ctx, record.event_time, "loaded_at") if has_load else None
    unloaded = instant(record, ctx, record.unloaded_at, "unloaded_at") if has_unload else None
    if loaded is not None and unloaded is not None and unloaded < loaded:
        raise RecordRejected(
            f"unloaded_at {unloaded.isoformat()} is before loaded_at {loaded.isoformat()}",
            field="unloaded_at",
        )
    return _Membership(unit, kind, tracking, loaded, unloaded)


# (unit, parcel, loaded_at) -> (unloaded_at, source eventID)
_Loads = dict[tuple[str, str, datetime], tuple[datetime | None, str]]
# (record, unit, parcel, unloaded_at, source eventID)
_Unloads = list[tuple[Record, str, str, datetime, str]]


def memberships_apply(
    run: FeedRun, records: Sequence[Record], ctx: FeedContext, retracted: dict[str, int]
) -> list[RecordError]:
    """Apply loads and unloads; `retracted` holds the eventIDs retracted by earlier runs."""
    rejects: list[RecordError] = []
    units: dict[str, str] = {}
    parcels: dict[str, ShipmentFacts] = {}
    loads: _Loads = {}
    unloads: _Unloads = []
    for record in records:
        event_id = text(record.extra.get("event_id"))
        if event_id in retracted:
            rejects.append(retracted_reject(record, event_id, retracted[event_id]))
            continue
        try:
            unit, kind, tracking, loaded, unloaded = _membership(record, ctx)
        except RecordRejected as exc:
            rejects.append(rejected(record, exc))
            continue
        if loaded is not None:
            # Only a load creates its unit and parcel: an unload closes what exists or is
            # rejected, and a rejected record leaves nothing behind (no phantom rows).
            if kind != "other" or unit not in units:
                units[unit] = kind
            parcels.setdefault(tracking, ShipmentFacts())
            key = (unit, tracking, loaded)
            known_unload, known_event = loads.get(key, (None, ""))
            loads[key] = (known_unload or unloaded, known_event or event_id)
        else:
            assert unloaded is not None
            unloads.append((record, unit, tracking, unloaded, event_id))
    if not loads and not unloads:
        return rejects
    moved: set[int] = set()
    with connection.cursor() as cursor:
        units_upsert(kinds=units)
        shipments_upsert(facts=parcels)
        if loads:
            moved |= _loads_insert(cursor, run, loads)
        if unloads:
            moved |= _unloads_close(cursor, run, unloads, rejects)
    # Membership decides which unit events a parcel's status counts.
    shipments_recompute(shipment_ids=sorted(moved))
    return rejects


def _loads_insert(cursor: CursorWrapper, run: FeedRun, loads: _Loads) -> set[int]:
    """Insert (or close) the loads' memberships; the shipments they moved."""
    keys = list(loads)
    cursor.execute(
        _INSERT_MEMBERSHIPS,
        [
            run.feed_id,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [loads[k][0] for k in keys],
            [loads[k][1] for k in keys],
        ],
    )
    return {int(row[0]) for row in cursor.fetchall()}


def _unloads_close(
    cursor: CursorWrapper, run: FeedRun, unloads: _Unloads, rejects: list[RecordError]
) -> set[int]:
    """Close the memberships the unloads end; the shipments they moved. An unload that closes
    nothing, and was not applied before, is added to `rejects`."""
    moved: set[int] = set()
    params: list[Any] = [
        list(range(len(unloads))),
        [u[1] for u in unloads],
        [u[2] for u in unloads],
        [u[3] for u in unloads],
        [u[4] for u in unloads],
    ]
    cursor.execute(_CLOSE_MEMBERSHIPS, [*params, run.feed_id])
    applied: set[int] = set()
    for shipment_id, index in cursor.fetchall():
        moved.add(int(shipment_id))
        applied.add(int(index))
    if len(applied) < len(unloads):
        cursor.execute(_ALREADY_CLOSED, params)
        applied.update(int(row[0]) for row in cursor.fetchall())
    for index, (record, unit, tracking, at, _) in enumerate(unloads):
        if index not in applied:
            what = f"parcel {tracking}" if tracking else "any parcel"
            rejects.append(
                reject(
                    record,
                    "unloaded_at",
                    f"no open membership of {what} in unit {unit} loaded before "
                    f"{at.isoformat()} to close",
                )
            )
    return moved
