"""Re-importing a retention file: the parcels come back as they were exported.

A parcel whose tracking number the database already holds is left alone, with everything in
its record: importing a file twice, or a file whose parcels were never removed, adds nothing.
Rows point at each other by what the file names (dedupe key, shop slug, unit number, user
name); a shop or user that no longer exists leaves the parcel unowned or the note unsigned.
A few statements per chunk of parcels, whatever their number.

A file's transport units come first, whatever their place in it: a parcel's history may name a
unit's event. A unit is matched by its number (unique), its events by their dedupe keys, so a
unit already present gains only the events it lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Value

from operations.models import ExceptionAck
from operations.retention import archive
from operations.retention.export import user_columns
from shipments.models import (
    Shipment,
    ShipmentClaim,
    StatusChange,
    TrackingEvent,
    TransportUnit,
    UnitMembership,
)


@dataclass
class ImportResult:
    name: str
    shipments: int = 0
    imported: int = 0
    already_present: int = 0
    units: int = 0
    units_imported: int = 0


def _columns(model: type[models.Model], *, leave_out: tuple[str, ...]) -> list[str]:
    """The model's columns a record carries under their own names (to_jsonb's keys)."""
    return [
        f.column
        for f in model._meta.concrete_fields
        if f.column and f.column not in leave_out and not f.primary_key
    ]


def _defaults(model: type[models.Model]) -> str:
    """The model's defaults as a JSON object, under the record: a file written before a column
    existed imports with the column's default, as the ORM would have written it."""
    values: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        if f.primary_key or not f.column:
            continue
        if f.has_default():
            values[f.column] = f.get_default()
        elif f.has_db_default() and isinstance(f.db_default, Value):
            values[f.column] = f.db_default.value
    return json.dumps(values, cls=DjangoJSONEncoder)


def _record(model: type[models.Model], item: str) -> str:
    """A row of `model` from a record, the model's defaults beneath it (`defaults` param)."""
    table = model._meta.db_table
    return f"jsonb_populate_record(NULL::{table}, %({table})s::jsonb || {item})"


def _insert(
    model: type[models.Model], key: str, *, refs: dict[str, str], leave_out: tuple[str, ...]
) -> str:
    """INSERT of the nested records under `key` of each new shipment; `refs` are the columns
    resolved by a join (column -> SQL expression over `n`, `x` and the joins)."""
    columns = _columns(model, leave_out=leave_out + tuple(refs))
    return f"""
INSERT INTO {model._meta.db_table} ({", ".join([*refs, *columns])})
SELECT {", ".join([*refs.values(), *(f"r.{c}" for c in columns)])}
FROM new_shipments n
CROSS JOIN LATERAL jsonb_array_elements(n.doc->'{key}') AS x(item)
CROSS JOIN LATERAL {_record(model, "x.item")} AS r
{{joins}}
ON CONFLICT DO NOTHING
"""


def _statements() -> list[str]:
    users, username = user_columns()
    shipment_columns = _columns(
        Shipment,
        leave_out=(
            "shop_id",
            "status_event_id",
            "status_event_at",
            "status_warehouse_id",
            "status_warehouse_known",
            "change_xid",
        ),
    )
    events = _insert(
        TrackingEvent, "events", refs={"shipment_id": "n.id"}, leave_out=("unit_id",)
    ).replace("{joins}", "")
    # The status event (its time and warehouse with it), and the bounds of the own events'
    # times (shipments.event_bounds) widened to the record's events: a file written before the
    # bounds existed carries none.
    status_event = """
UPDATE shipments_shipment s SET status_event_id = e.id, status_event_at = e.occurred_at,
       status_warehouse_id = e.warehouse_id, status_warehouse_known = e.id IS NOT NULL,
       first_event_at = least(s.first_event_at, b.first_at),
       last_event_at = greatest(s.last_event_at, b.last_at)
FROM new_shipments n
CROSS JOIN LATERAL (
    SELECT min((x.item->>'occurred_at')::timestamptz) AS first_at,
           max((x.item->>'occurred_at')::timestamptz) AS last_at
    FROM jsonb_array_elements(n.doc->'events') AS x(item)
) b
LEFT JOIN shipments_trackingevent e ON e.dedupe_key = (n.doc->>'status_event')::uuid
WHERE s.id = n.id
"""
    history = _insert(
        StatusChange,
        "status_changes",
        refs={"shipment_id": "n.id", "event_id": "e.id"},
        leave_out=(),
    ).replace(
        "{joins}",
        "LEFT JOIN shipments_trackingevent e ON e.dedupe_key = (x.item->>'event')::uuid",
    )
    units = """
INSERT INTO shipments_transportunit (number, kind, created_at)
SELECT DISTINCT ON (x.item->>'unit') x.item->>'unit', x.item->>'unit_kind', now()
FROM new_shipments n CROSS JOIN LATERAL jsonb_array_elements(n.doc->'memberships') AS x(item)
ORDER BY x.item->>'unit'
ON CONFLICT (number) DO NOTHING
"""
    memberships = _insert(
        UnitMembership,
        "memberships",
        refs={"shipment_id": "n.id", "unit_id": "u.id"},
        leave_out=(),
    ).replace("{joins}", "JOIN shipments_transportunit u ON u.number = x.item->>'unit'")
    claims = _insert(
        ShipmentClaim, "claims", refs={"shipment_id": "n.id", "shop_id": "sh.id"}, leave_out=()
    ).replace("{joins}", "JOIN shipments_shop sh ON sh.slug = x.item->>'shop'")
    notes = _insert(
        ExceptionAck,
        "exception_notes",
        refs={"shipment_id": "n.id", "by_id": "au.id"},
        leave_out=(),
    ).replace(
        "{joins}",
        f"LEFT JOIN {users} au ON au.{username} = x.item->>'by'",
    )
    shipments = f"""
INSERT INTO shipments_shipment (shop_id, {", ".join(shipment_columns)})
SELECT sh.id, {", ".join(f"r.{c}" for c in shipment_columns)}
FROM jsonb_array_elements(%(docs)s::jsonb) AS d(doc)
CROSS JOIN LATERAL {_record(Shipment, "d.doc")} AS r
LEFT JOIN shipments_shop sh ON sh.slug = d.doc->>'shop'
ORDER BY r.tracking_number
ON CONFLICT (tracking_number) DO NOTHING
RETURNING id, tracking_number
"""
    return [shipments, events, status_event, history, units, memberships, claims, notes]


_MODELS = (
    Shipment,
    TrackingEvent,
    StatusChange,
    TransportUnit,
    UnitMembership,
    ShipmentClaim,
    ExceptionAck,
)


def _unit_statements() -> list[str]:
    unit_columns = _columns(TransportUnit, leave_out=())
    units = f"""
INSERT INTO shipments_transportunit ({", ".join(unit_columns)})
SELECT {", ".join(f"r.{c}" for c in unit_columns)}
FROM jsonb_array_elements(%(docs)s::jsonb) AS d(doc)
CROSS JOIN LATERAL {_record(TransportUnit, "d.doc")} AS r
ORDER BY r.number
ON CONFLICT (number) DO NOTHING
RETURNING id
"""
    event_columns = _columns(TrackingEvent, leave_out=("unit_id", "shipment_id"))
    events = f"""
INSERT INTO shipments_trackingevent (unit_id, {", ".join(event_columns)})
SELECT u.id, {", ".join(f"r.{c}" for c in event_columns)}
FROM jsonb_array_elements(%(docs)s::jsonb) AS d(doc)
JOIN shipments_transportunit u ON u.number = d.doc->>'number'
CROSS JOIN LATERAL jsonb_array_elements(d.doc->'events') AS x(item)
CROSS JOIN LATERAL {_record(TrackingEvent, "x.item")} AS r
ON CONFLICT DO NOTHING
"""
    return [units, events]


def _import_units(docs: list[str]) -> int:
    """Insert the units of these records not already present, and every event of theirs not
    present (by dedupe key); returns how many units went in."""
    units, events = _unit_statements()
    params = {"docs": "[" + ",".join(docs) + "]"} | {
        model._meta.db_table: _defaults(model) for model in (TransportUnit, TrackingEvent)
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(units, params)
        inserted = len(cursor.fetchall())
        cursor.execute(events, params)
    return inserted


_NEW_SHIPMENTS = """
DROP TABLE IF EXISTS new_shipments;
CREATE TEMP TABLE new_shipments ON COMMIT DROP AS
SELECT s.id, d.doc
FROM jsonb_array_elements(%(docs)s::jsonb) AS d(doc)
JOIN unnest(%(ids)s::bigint[], %(numbers)s::text[]) AS s(id, tracking_number)
  ON s.tracking_number = d.doc->>'tracking_number'
"""


def _import_chunk(docs: list[str]) -> int:
    """Insert the parcels of these records not already present; returns how many went in."""
    shipments, *children = _statements()
    payload = "[" + ",".join(docs) + "]"
    defaults = {model._meta.db_table: _defaults(model) for model in _MODELS}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(shipments, {"docs": payload, **defaults})
        inserted = cursor.fetchall()
        if not inserted:
            return 0
        drop, create = _NEW_SHIPMENTS.split(";\n")
        cursor.execute(drop)
        cursor.execute(
            create,
            {
                "docs": payload,
                "ids": [row[0] for row in inserted],
                "numbers": [row[1] for row in inserted],
            },
        )
        for statement in children:
            cursor.execute(statement, defaults)
    return len(inserted)


def retention_import(name: str, *, storage: Storage | None = None) -> ImportResult:
    """Import a retention file by its name in the storage. The whole file is read once first:
    a damaged one raises ArchiveError before anything is written."""
    storage = storage or archive.retention_storage()
    summary = archive.archive_summary(storage, name)
    result = ImportResult(name=name, units=summary.units)
    if summary.units:
        lines = archive.archive_lines(storage, name)
        units = (line for kind, _key, line in lines if kind == "unit")
        for docs in archive.batched(units, settings.RETENTION_BATCH):
            result.units_imported += _import_units(docs)
    chunk: list[str] = []
    for kind, _key, line in archive.archive_lines(storage, name):
        if kind != "shipment":
            continue
        chunk.append(line)
        if len(chunk) >= settings.RETENTION_BATCH:
            result.imported += _import_chunk(chunk)
            result.shipments += len(chunk)
            chunk = []
    if chunk:
        result.imported += _import_chunk(chunk)
        result.shipments += len(chunk)
    result.already_present = result.shipments - result.imported
    return result
