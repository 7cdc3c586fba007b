"""Shipments and transport units as retention records: one query per chunk, whatever its size.

Each record is built by PostgreSQL (`to_jsonb` of the rows), so a column added to a table (a
buyer's e-mail on the shipment, say) is exported without a change here. Internal ids are left
out: rows point at each other by what survives a re-import (an event's dedupe key, a shop's
slug, a unit's number, a user's name).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, models

from shipments.event_bounds import status_event_at


@dataclass(frozen=True, slots=True)
class Exported:
    """What the removal checks before deleting: the shipment still is as it was exported."""

    shipment_id: int
    change_xid: int
    events: int


def user_columns() -> tuple[str, str]:
    """The user table and its username column: notes name their author by it."""
    user = get_user_model()
    field = user._meta.get_field(user.USERNAME_FIELD)
    assert isinstance(field, models.Field)
    assert field.column
    return user._meta.db_table, field.column


# Each table is read once for the whole chunk (`= ANY(ids)`), then grouped per shipment: the
# events table is partitioned by month, and a lookup per shipment would visit every month's
# index once per shipment. An event another row names (the status event, a status change's
# event) is found among the shipment's own first; only a unit's event is looked up by id.
def _export_sql() -> str:
    users, username = user_columns()
    return f"""
WITH own AS (
    SELECT e.id, e.shipment_id, e.dedupe_key, e.occurred_at,
           to_jsonb(e) - ARRAY['id', 'shipment_id', 'unit_id'] AS doc
    FROM shipments_trackingevent e WHERE e.shipment_id = ANY(%(ids)s)
), ev AS (
    SELECT shipment_id, count(*) AS n, jsonb_agg(doc ORDER BY occurred_at, id) AS list
    FROM own GROUP BY 1
), sc AS (
    SELECT c.shipment_id,
           jsonb_agg((to_jsonb(c) - ARRAY['id', 'shipment_id', 'event_id'])
                     || jsonb_build_object('event', coalesce(o.dedupe_key, (
                         SELECT u.dedupe_key FROM shipments_trackingevent u
                         WHERE u.id = c.event_id)))
                     ORDER BY c.changed_at, c.id) AS list
    FROM shipments_statuschange c LEFT JOIN own o ON o.id = c.event_id
    WHERE c.shipment_id = ANY(%(ids)s) GROUP BY 1
), mb AS (
    SELECT m.shipment_id,
           jsonb_agg((to_jsonb(m) - ARRAY['id', 'shipment_id', 'unit_id'])
                     || jsonb_build_object('unit', u.number, 'unit_kind', u.kind)
                     ORDER BY m.loaded_at, m.id) AS list
    FROM shipments_unitmembership m JOIN shipments_transportunit u ON u.id = m.unit_id
    WHERE m.shipment_id = ANY(%(ids)s) GROUP BY 1
), cl AS (
    SELECT c.shipment_id,
           jsonb_agg((to_jsonb(c) - ARRAY['id', 'shipment_id', 'shop_id'])
                     || jsonb_build_object('shop', cs.slug) ORDER BY c.id) AS list
    FROM shipments_shipmentclaim c JOIN shipments_shop cs ON cs.id = c.shop_id
    WHERE c.shipment_id = ANY(%(ids)s) GROUP BY 1
), nt AS (
    SELECT a.shipment_id,
           jsonb_agg((to_jsonb(a) - ARRAY['id', 'shipment_id', 'by_id'])
                     || jsonb_build_object('by', au.{username}) ORDER BY a.at, a.id) AS list
    FROM operations_exceptionack a LEFT JOIN {users} au ON au.id = a.by_id
    WHERE a.shipment_id = ANY(%(ids)s) GROUP BY 1
)
SELECT s.id, s.change_xid, s.tracking_number, coalesce(ev.n, 0),
       ((to_jsonb(s) - ARRAY['id', 'shop_id', 'status_event_id', 'change_xid'])
        || jsonb_build_object(
            'record', 'shipment',
            'shop', sh.slug,
            'status_event', coalesce(se.dedupe_key, (
                SELECT u.dedupe_key FROM shipments_trackingevent u
                WHERE u.id = s.status_event_id AND {status_event_at("s", "u.occurred_at")})),
            'events', coalesce(ev.list, '[]'),
            'status_changes', coalesce(sc.list, '[]'),
            'memberships', coalesce(mb.list, '[]'),
            'claims', coalesce(cl.list, '[]'),
            'exception_notes', coalesce(nt.list, '[]')
        ))::text
FROM shipments_shipment s
LEFT JOIN shipments_shop sh ON sh.id = s.shop_id
LEFT JOIN own se ON se.id = s.status_event_id
LEFT JOIN ev ON ev.shipment_id = s.id
LEFT JOIN sc ON sc.shipment_id = s.id
LEFT JOIN mb ON mb.shipment_id = s.id
LEFT JOIN cl ON cl.shipment_id = s.id
LEFT JOIN nt ON nt.shipment_id = s.id
WHERE s.id = ANY(%(ids)s)
ORDER BY s.id
"""


def shipments_export_chunk(ids: list[int]) -> list[tuple[Exported, str, str]]:
    """(what was exported, tracking number, JSON line) for each of these shipments."""
    with connection.cursor() as cursor:
        cursor.execute(_export_sql(), {"ids": ids})
        return [
            (Exported(shipment_id=pk, change_xid=xid, events=events), tracking_number, line)
            for pk, xid, tracking_number, events, line in cursor.fetchall()
        ]


def shipments_present(tracking_numbers: list[str]) -> set[str]:
    """Which of these tracking numbers the database holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tracking_number FROM shipments_shipment WHERE tracking_number = ANY(%s)",
            [tracking_numbers],
        )
        return {row[0] for row in cursor.fetchall()}


@dataclass(frozen=True, slots=True)
class ExportedUnit:
    """A transport unit as exported: the removal checks it still has this many events."""

    unit_id: int
    events: int


# A unit's record: the unit row and its own events (a parcel's events are in its record).
_UNITS_SQL = """
SELECT u.id, u.number, count(e.id),
       ((to_jsonb(u) - 'id') || jsonb_build_object(
           'record', 'unit',
           'events', coalesce(jsonb_agg(to_jsonb(e) - ARRAY['id', 'shipment_id', 'unit_id']
                                        ORDER BY e.occurred_at, e.id)
                              FILTER (WHERE e.id IS NOT NULL), '[]')
       ))::text
FROM shipments_transportunit u
LEFT JOIN shipments_trackingevent e ON e.unit_id = u.id
WHERE u.id = ANY(%(ids)s)
GROUP BY u.id
ORDER BY u.id
"""


def units_export(ids: list[int]) -> list[tuple[ExportedUnit, str, str]]:
    """(what was exported, unit number, JSON line) for each of these units, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_UNITS_SQL, {"ids": ids})
        return [
            (ExportedUnit(unit_id=pk, events=events), number, line)
            for pk, number, events, line in cursor.fetchall()
        ]


def units_present(numbers: list[str]) -> set[str]:
    """Which of these unit numbers the database holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT number FROM shipments_transportunit WHERE number = ANY(%s)", [numbers]
        )
        return {row[0] for row in cursor.fetchall()}
