"""A chunk of shipments as retention records: one query per chunk, whatever its size.

Each record is built by PostgreSQL (`to_jsonb` of the rows), so a column added to a table (a
buyer's e-mail on the shipment, say) is exported without a change here. Internal ids are left
out: rows point at each other by what survives a re-import (an event's dedupe key, a shop's
slug, a unit's number, a user's name).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, models


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


def _export_sql() -> str:
    users, username = user_columns()
    return f"""
SELECT s.id, s.change_xid, s.tracking_number,
       (SELECT count(*) FROM shipments_trackingevent e WHERE e.shipment_id = s.id),
       ((to_jsonb(s) - ARRAY['id', 'shop_id', 'status_event_id', 'change_xid'])
        || jsonb_build_object(
            'record', 'shipment',
            'shop', sh.slug,
            'status_event', se.dedupe_key,
            'events', coalesce((
                SELECT jsonb_agg(to_jsonb(e) - ARRAY['id', 'shipment_id', 'unit_id']
                                 ORDER BY e.occurred_at, e.id)
                FROM shipments_trackingevent e WHERE e.shipment_id = s.id), '[]'),
            'status_changes', coalesce((
                SELECT jsonb_agg((to_jsonb(c) - ARRAY['id', 'shipment_id', 'event_id'])
                                 || jsonb_build_object('event', ce.dedupe_key)
                                 ORDER BY c.changed_at, c.id)
                FROM shipments_statuschange c
                LEFT JOIN shipments_trackingevent ce ON ce.id = c.event_id
                WHERE c.shipment_id = s.id), '[]'),
            'memberships', coalesce((
                SELECT jsonb_agg((to_jsonb(m) - ARRAY['id', 'shipment_id', 'unit_id'])
                                 || jsonb_build_object('unit', u.number, 'unit_kind', u.kind)
                                 ORDER BY m.loaded_at, m.id)
                FROM shipments_unitmembership m
                JOIN shipments_transportunit u ON u.id = m.unit_id
                WHERE m.shipment_id = s.id), '[]'),
            'claims', coalesce((
                SELECT jsonb_agg((to_jsonb(c) - ARRAY['id', 'shipment_id', 'shop_id'])
                                 || jsonb_build_object('shop', cs.slug) ORDER BY c.id)
                FROM shipments_shipmentclaim c JOIN shipments_shop cs ON cs.id = c.shop_id
                WHERE c.shipment_id = s.id), '[]'),
            'exception_notes', coalesce((
                SELECT jsonb_agg((to_jsonb(a) - ARRAY['id', 'shipment_id', 'by_id'])
                                 || jsonb_build_object('by', au.{username}) ORDER BY a.at, a.id)
                FROM operations_exceptionack a LEFT JOIN {users} au ON au.id = a.by_id
                WHERE a.shipment_id = s.id), '[]')
        ))::text
FROM shipments_shipment s
LEFT JOIN shipments_shop sh ON sh.id = s.shop_id
LEFT JOIN shipments_trackingevent se ON se.id = s.status_event_id
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
