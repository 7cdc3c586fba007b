"""The shipments and units a batch names: created, or their blanks filled, one statement each.

Shared by the events' recorder and the other record kinds (the warehouses app's ingest of
unit memberships and shipment facts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from django.db import connection

from shipments.recording.inputs import ShipmentFacts
from shipments.recording.statements import UPSERT_SHIPMENTS, UPSERT_UNITS, execute_binary
from shipments.recording.status_rules import ShipmentState


def _ids(
    cursor: psycopg.Cursor[Any],
    sql: str,
    params: Mapping[str, Any],
    names: list[str],
    inserted: set[int] | None = None,
) -> dict[str, int]:
    """name -> id from `sql`'s (name, id[, inserted]) rows; the ids inserted go to `inserted`."""
    execute_binary(cursor, sql, params)
    rows = cursor.fetchall()
    missing = set(names) - {row[0] for row in rows}
    if missing:
        # Created by a concurrent transaction after our snapshot: a new statement sees them.
        execute_binary(cursor, sql, params)
        rows += cursor.fetchall()
    if inserted is not None:
        inserted.update(int(row[1]) for row in rows if row[2])
    return {row[0]: int(row[1]) for row in rows}


_NO_STATE = ShipmentState()


def facts_document(
    facts: Mapping[str, ShipmentFacts],
    states: Mapping[str, ShipmentState],
    ids: Mapping[str, int] | None = None,
) -> str:
    """The facts (and, for a shipment to create, its state) as one JSON document, by number.

    One document, encoded in C, instead of thirteen arrays: psycopg adapts an array element by
    element in Python, which cost more than the statement.
    """
    rows = []
    for name in sorted(facts):
        fact = facts[name]
        state = states.get(name) or _NO_STATE
        rows.append(
            {
                "id": None if ids is None else ids[name],
                "tn": name,
                "o": fact.order_number,
                "c": fact.carrier,
                "m": fact.transport_mode,
                "og": fact.origin_country,
                "d": fact.destination_country,
                "w": None if fact.weight_kg is None else str(fact.weight_kg),
                "cur": fact.currency,
                "v": None if fact.declared_value is None else str(fact.declared_value),
                "st": state.status,
                "sg": state.stage,
                "se": state.status_event_id,
                "le": None if state.last_event_at is None else state.last_event_at.isoformat(),
                "fe": None if state.first_event_at is None else state.first_event_at.isoformat(),
                "sa": None if state.status_event_at is None else state.status_event_at.isoformat(),
                "sw": state.status_warehouse_id,
            }
        )
    return json.dumps(rows, ensure_ascii=False)


def shipments_upsert(
    *,
    facts: Mapping[str, ShipmentFacts],
    cursor: psycopg.Cursor[Any] | None = None,
    states: Mapping[str, ShipmentState] | None = None,
    inserted: set[int] | None = None,
) -> dict[str, int]:
    """Create missing shipments, fill their blank facts; tracking number -> id, one statement.

    A shipment it creates takes its state from `states` (pending without); the ids it created
    are added to `inserted`.
    """
    if not facts:
        return {}
    params = {"facts": facts_document(facts, states or {})}
    names = sorted(facts)
    if cursor is not None:
        return _ids(cursor, UPSERT_SHIPMENTS, params, names, inserted)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as binary:
        return _ids(binary, UPSERT_SHIPMENTS, params, names, inserted)


def units_upsert(
    *, kinds: Mapping[str, str], cursor: psycopg.Cursor[Any] | None = None
) -> dict[str, int]:
    """Create missing transport units (number -> kind); number -> id, one statement."""
    if not kinds:
        return {}
    numbers = sorted(kinds)
    params = {"number": numbers, "kind": [kinds[n] or "other" for n in numbers]}
    if cursor is not None:
        return _ids(cursor, UPSERT_UNITS, params, numbers)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as binary:
        return _ids(binary, UPSERT_UNITS, params, numbers)
