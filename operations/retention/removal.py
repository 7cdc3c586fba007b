"""Removing exported shipments with everything that hangs on them, a few statements per batch.

The statements come from the models' relations: every table whose rows die with a shipment
(Django's CASCADE: events, status history, memberships, claims, estimates, webhook outbox and
attempts, exception items and notes, and any table added later) is deleted from with one
statement per table, and every table that only points at it (SET_NULL: the customs match) is
updated with one. The ORM's own delete would load every event into memory first.

A transport unit left without members goes the same way (its own events, and the pointers at
them), once its last parcel is gone.

Foreign keys are checked at COMMIT (Django makes them deferrable), so a table this list missed,
or a row a writer added meanwhile, fails the batch's transaction instead of leaving orphans.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models.deletion import get_candidate_relations_to_delete

from operations.retention.export import Exported, ExportedUnit
from shipments.models import Shipment, TrackingEvent, TransportUnit

# Events in the months whose partitions go whole (operations.retention.partitions) are left to
# the DROP; empty arrays (the usual case) keep every row in reach.
_OUTSIDE_DROPPED = (
    " AND NOT EXISTS (SELECT 1 FROM unnest(%(drop_from)s::timestamptz[],"
    " %(drop_to)s::timestamptz[]) AS d(f, t) WHERE occurred_at >= d.f AND occurred_at < d.t)"
)


def _cascade(
    model: type[models.Model], where: str, dying: set[type[models.Model]], *, root: bool = False
) -> list[str]:
    """Statements removing the rows of `model` matching `where` and what depends on them,
    dependents first (readability only: the constraints are deferred).

    A SET_NULL pointer from a table whose rows die too is left alone: those rows are the
    removed shipments' own (StatusChange.event and Shipment.status_event name own events).
    """
    steps: list[str] = []
    table = model._meta.db_table
    pk = model._meta.pk
    assert pk is not None
    for rel in get_candidate_relations_to_delete(model._meta):
        if not isinstance(rel, models.ManyToOneRel):
            continue
        child = rel.related_model
        assert isinstance(child, type)
        assert issubclass(child, models.Model)
        column = rel.field.column
        if root:
            child_where = f"{column} = ANY(%(ids)s)"
        else:
            child_where = f"{column} IN (SELECT {pk.column} FROM {table} WHERE {where})"
        if rel.on_delete is models.CASCADE:
            steps += _cascade(child, child_where, dying)
        elif rel.on_delete is models.SET_NULL:
            if child not in dying:
                steps.append(
                    f"UPDATE {child._meta.db_table} SET {column} = NULL WHERE {child_where}"
                )
        elif rel.on_delete is not models.DO_NOTHING:
            raise TypeError(
                f"{child.__name__}.{rel.field.name} protects {model.__name__} rows: retention "
                "cannot remove them (decide what it should do: docs/retention.md)"
            )
    if model is TrackingEvent:
        where += _OUTSIDE_DROPPED
    steps.append(f"DELETE FROM {table} WHERE {where}")
    return steps


def _dying_models(model: type[models.Model], found: set[type[models.Model]]) -> None:
    found.add(model)
    for rel in get_candidate_relations_to_delete(model._meta):
        child = rel.related_model
        if (
            isinstance(rel, models.ManyToOneRel)
            and rel.on_delete is models.CASCADE
            and isinstance(child, type)
            and child not in found
        ):
            _dying_models(child, found)


@cache
def removal_statements(model: type[models.Model] = Shipment) -> tuple[str, ...]:
    dying: set[type[models.Model]] = set()
    _dying_models(model, dying)
    return tuple(_cascade(model, "id = ANY(%(ids)s)", dying, root=True))


# The shipments of a batch that are still as they were exported, locked against the recorder:
# same transaction id on the row (nothing wrote it since) and the same number of events (an
# event that moved nothing on the row still counts). The others stay, for a later run.
_LOCK_SQL = """
SELECT s.id FROM shipments_shipment s
JOIN unnest(%(ids)s::bigint[], %(xids)s::bigint[], %(events)s::bigint[]) AS x(id, xid, events)
  ON x.id = s.id AND x.xid = s.change_xid
LEFT JOIN (
    SELECT e.shipment_id, count(*) AS n FROM shipments_trackingevent e
    WHERE e.shipment_id = ANY(%(ids)s) GROUP BY 1
) c ON c.shipment_id = s.id
WHERE coalesce(c.n, 0) = x.events
ORDER BY s.id
FOR UPDATE OF s
"""


def shipments_lock(cursor: CursorWrapper, batch: list[Exported]) -> list[int]:
    """Lock the shipments of the batch still as exported (in the caller's transaction)."""
    cursor.execute(
        _LOCK_SQL,
        {
            "ids": [item.shipment_id for item in batch],
            "xids": [item.change_xid for item in batch],
            "events": [item.events for item in batch],
        },
    )
    return [row[0] for row in cursor.fetchall()]


def shipments_delete(
    cursor: CursorWrapper, ids: list[int], *, dropped: Sequence[tuple[datetime, datetime]] = ()
) -> None:
    """Delete these (locked) shipments and their rows; events in `dropped` ranges stay for
    the caller to drop with their partitions in the same transaction."""
    for statement in removal_statements():
        cursor.execute(statement, _params(ids, dropped))


def _params(ids: list[int], dropped: Sequence[tuple[datetime, datetime]]) -> dict[str, Any]:
    return {
        "ids": ids,
        "drop_from": [start for start, _end in dropped],
        "drop_to": [end for _start, end in dropped],
    }


# The units of the list still as exported (same number of own events) and without a member
# left, locked: a member that stayed (its parcel changed, or its month was not exported) keeps
# its unit, for a later run.
_UNITS_LOCK_SQL = """
SELECT u.id FROM shipments_transportunit u
JOIN unnest(%(ids)s::bigint[], %(events)s::bigint[]) AS x(id, events) ON x.id = u.id
LEFT JOIN (
    SELECT e.unit_id, count(*) AS n FROM shipments_trackingevent e
    WHERE e.unit_id = ANY(%(ids)s) GROUP BY 1
) c ON c.unit_id = u.id
WHERE coalesce(c.n, 0) = x.events
  AND NOT EXISTS (SELECT 1 FROM shipments_unitmembership m WHERE m.unit_id = u.id)
ORDER BY u.id
FOR UPDATE OF u
"""


def units_delete(
    cursor: CursorWrapper,
    units: list[ExportedUnit],
    *,
    dropped: Sequence[tuple[datetime, datetime]] = (),
) -> list[int]:
    """Lock and delete the units of the list that are still as exported and memberless (in the
    caller's transaction, after their parcels); returns their ids."""
    cursor.execute(
        _UNITS_LOCK_SQL,
        {"ids": [u.unit_id for u in units], "events": [u.events for u in units]},
    )
    ids = [row[0] for row in cursor.fetchall()]
    if ids:
        for statement in removal_statements(TransportUnit):
            cursor.execute(statement, _params(ids, dropped))
    return ids


def shipments_remove(batch: list[Exported]) -> int:
    """Remove one batch in one transaction; returns how many shipments went."""
    with transaction.atomic(), connection.cursor() as cursor:
        ids = shipments_lock(cursor, batch)
        if ids:
            shipments_delete(cursor, ids)
    return len(ids)


def units_remove(units: list[ExportedUnit]) -> int:
    """Remove, in one transaction, the exported units their parcels' batches left memberless."""
    if not units:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        return len(units_delete(cursor, units))
