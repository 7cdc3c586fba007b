"""The bulk write path: the only code that writes tracking events.

One call records one batch inside the caller's transaction, in a constant number of queries
(see `events_record`): dedupe against stored keys (drawing the new events' ids), upsert the
shipments and units the batch names (a shipment the batch creates is created in the status its
events give it), note which shipments the new events touch (directly, or through a unit they
were inside at that moment), COPY the new events, lock the other touched shipments in id order,
and recompute their status set-based (the lock is taken in its own statement so the recompute
sees every event committed by a concurrent batch). The ingest worker splits the call
(`events_record_start`) to send the COPY's end, the recompute and its COMMIT without waiting
for them. `shipments_upsert` / `units_upsert` are shared with the other record kinds
(warehouses.ingest_kinds).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.db import connection
from django.utils import timezone

from shipments.estimates import estimate_ctes, estimate_params
from shipments.membership import inside_unit
from shipments.recording.pipelining import EndUnawaitedWriter
from shipments.statuses import COUNTED_AFTER_DELIVERY, EVENT_CODES, sql_list, status_for


@dataclass(slots=True)
class EventInput:
    """A normalized event, ready to record. `occurred_at` is aware and in UTC."""

    line: int
    code: str
    occurred_at: datetime
    utc_offset_minutes: int
    tz_source: str
    tracking_number: str = ""
    unit_number: str = ""
    unit_kind: str = ""
    location_name: str = ""
    location_code: str = ""
    country: str = ""
    description: str = ""
    order_number: str = ""
    carrier: str = ""
    transport_mode: str = ""
    weight_kg: Decimal | None = None
    raw: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def dedupe_key(self, source: str) -> uuid.UUID:
        """Identity within a source: (source, parcel or unit, code, time, place).

        The first 128 bits of a sha256, stored as a uuid: a 16-byte key keeps the unique index
        small, which is most of the cost of inserting an event.
        """
        return uuid.UUID(_dedupe_hex(source, self, self.occurred_at.isoformat()))


def _dedupe_hex(source: str, event: EventInput, occurred_at: str) -> str:
    """`EventInput.dedupe_key` as 32 hex digits (PostgreSQL reads them as a uuid).

    The recorder keeps keys as text: building a uuid.UUID per event cost more than hashing it.
    """
    subject = event.tracking_number or f"unit:{event.unit_number}"
    place = event.location_code or event.location_name.strip().lower()
    text = "|".join((source, subject, event.code, occurred_at, place))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(slots=True)
class RecordResult:
    created: int = 0
    duplicates: int = 0
    status_changes: int = 0
    # (line, line it repeats) for rows that repeat an event of the same run: a duplicate row
    # inside one file, which the operator should hear about (re-deliveries stay silent).
    repeated_lines: list[tuple[int, int]] = field(default_factory=list)


# JIT off for the batch's transaction: without statistics on hub_touched the planner's costs
# for the recompute pass jit_above_cost, and compiling it took longer (~0.3 s a batch) than
# running it. Every statement here is a short index-driven one that JIT cannot speed up.
_TOUCHED_DDL = """
CREATE TEMP TABLE IF NOT EXISTS hub_touched (
    shipment_id bigint, created boolean NOT NULL DEFAULT false, stage_entered_at timestamptz
) ON COMMIT DELETE ROWS;
TRUNCATE hub_touched;
SET LOCAL jit = off;
"""

# One index probe per key. As a plain join the planner prefers hashing the whole events table
# once the batch is big enough, which costs a scan of every stored event per batch; OFFSET 0
# keeps the lateral subquery from being flattened into that join. (`= ANY(<5000 literals>)`
# spends more time planning than probing.)
# The keys travel as one space-separated string: psycopg adapts a list element by element in
# Python, which for 20,000 keys cost more than the lookup.
# The same statement draws the ids of the keys not stored (the events to insert) from the
# events' sequence: with its ids known before the COPY, the batch creates each new shipment
# with its final status in one write (`_shipment_states`) instead of inserting and updating it.
_KEY_STORED = """CROSS JOIN LATERAL (
        SELECT e.run_id, e.source_line FROM shipments_trackingevent e
        WHERE e.dedupe_key = k.key::uuid OFFSET 0
    ) e"""


def _next_id(table: str) -> str:
    return f"nextval((SELECT pg_get_serial_sequence('{table}', 'id')::regclass))"


_EXISTING_KEYS = f"""
WITH stored AS (
    SELECT k.key, e.run_id, e.source_line
    FROM unnest(string_to_array(%(keys)s, ' ')) AS k(key)
    {_KEY_STORED}
)
SELECT key, run_id, source_line, NULL::bigint AS new_id FROM stored
UNION ALL
SELECT NULL, NULL, NULL, {_next_id("shipments_trackingevent")}
FROM generate_series(1, %(count)s - (SELECT count(*) FROM stored))
"""

# The ingest worker's probe (`events_record_start(defer_shipments=True)`): the same lookup and
# ids, and in the same statement the ids of the batch's known shipments, with ids drawn for the
# ones to create. A key is only looked up when its shipment is known: a stored event's
# shipment is stored with it (tracking numbers never change), so a key of a shipment this
# snapshot does not hold cannot be stored. Unit events ('~') are always looked up.
# With every id known before the COPY, the shipments are written after it, in the script sent
# without waiting (`_INSERT_SHIPMENTS`; the events' foreign key is checked at commit).
_PROBE_DRAWING_SHIPMENTS = f"""
WITH known AS (
    SELECT n.tn, s.id
    FROM unnest(string_to_array(%(numbers)s, ' ')) AS n(tn)
    CROSS JOIN LATERAL (
        SELECT s.id FROM shipments_shipment s WHERE s.tracking_number = n.tn OFFSET 0
    ) s
), stored AS (
    SELECT k.key, e.run_id, e.source_line
    FROM unnest(string_to_array(%(keys)s, ' '), string_to_array(%(key_numbers)s, ' '))
        AS k(key, tn)
    {_KEY_STORED}
    WHERE k.tn = '~' OR k.tn IN (SELECT tn FROM known)
)
SELECT 'stored', key, run_id, source_line::bigint FROM stored
UNION ALL
SELECT 'event', NULL, NULL, {_next_id("shipments_trackingevent")}
FROM generate_series(1, %(count)s - (SELECT count(*) FROM stored))
UNION ALL
SELECT 'known', tn, NULL, id FROM known
UNION ALL
SELECT 'new', NULL, NULL, {_next_id("shipments_shipment")}
FROM generate_series(1, %(numbers_count)s - (SELECT count(*) FROM known))
"""

# On a tracking number already stored, a batch only fills its blanks.
_FILL_BLANKS = """ON CONFLICT (tracking_number) DO UPDATE SET
    order_number = coalesce(nullif(s.order_number, ''), EXCLUDED.order_number),
    carrier = coalesce(nullif(s.carrier, ''), EXCLUDED.carrier),
    transport_mode = coalesce(nullif(s.transport_mode, ''), EXCLUDED.transport_mode),
    origin_country = coalesce(nullif(s.origin_country, ''), EXCLUDED.origin_country),
    destination_country = coalesce(nullif(s.destination_country, ''),
                                   EXCLUDED.destination_country),
    weight_kg = coalesce(s.weight_kg, EXCLUDED.weight_kg),
    currency = coalesce(nullif(s.currency, ''), EXCLUDED.currency),
    declared_value = coalesce(s.declared_value, EXCLUDED.declared_value),
    updated_at = now()
WHERE (s.order_number = '' AND EXCLUDED.order_number <> '')
   OR (s.carrier = '' AND EXCLUDED.carrier <> '')
   OR (s.transport_mode = '' AND EXCLUDED.transport_mode <> '')
   OR (s.origin_country = '' AND EXCLUDED.origin_country <> '')
   OR (s.destination_country = '' AND EXCLUDED.destination_country <> '')
   OR (s.weight_kg IS NULL AND EXCLUDED.weight_kg IS NOT NULL)
   OR (s.currency = '' AND EXCLUDED.currency <> '')
   OR (s.declared_value IS NULL AND EXCLUDED.declared_value IS NOT NULL)
"""


# Facts about a shipment only fill blanks: the first source to know an order number wins, and a
# later feed never overwrites what a shop registered. The second half returns the ids of the
# shipments the upsert left alone (a row inserted concurrently after this statement's snapshot
# is missing from both halves; the caller reads those few again).
# A shipment this statement creates takes the state its batch's events give it
# (`_shipment_states`, null for none: pending): RECOMPUTE_SQL's rules over all the events it
# has. RECOMPUTE_SQL then only records its history and estimate (`hub_touched.created`, from
# `inserted` below) instead of computing its status again and updating it.
# The facts travel as one JSON document (see `shipments_upsert`).
_UPSERT_SHIPMENTS = f"""
WITH facts AS (
    SELECT f.tn AS tracking_number, f.o AS order_number, f.c AS carrier, f.m AS transport_mode,
           f.og AS origin_country, f.d AS destination_country, f.w AS weight_kg,
           f.cur AS currency, f.v AS declared_value, f.st AS status, f.sg AS stage,
           f.se AS status_event_id, f.le AS last_event_at
    FROM json_to_recordset(%(facts)s::json) AS f(
        tn text, o text, c text, m text, og text, d text, w numeric, cur text, v numeric,
        st text, sg text, se bigint, le timestamptz)
), up AS (
    INSERT INTO shipments_shipment AS s (
        tracking_number, order_number, carrier, transport_mode, origin_country,
        destination_country, weight_kg, currency, declared_value, metadata, status, stage,
        status_event_id, status_changed_at, last_event_at, created_at, updated_at)
    SELECT f.tracking_number, f.order_number, f.carrier, f.transport_mode, f.origin_country,
           f.destination_country, f.weight_kg, f.currency, f.declared_value, '{{}}'::jsonb,
           coalesce(f.status, 'pending'), coalesce(f.stage, ''), f.status_event_id,
           CASE WHEN f.status IS NOT NULL THEN now() END, f.last_event_at, now(), now()
    FROM facts f
    ORDER BY f.tracking_number
{_FILL_BLANKS}    -- xmax: 0 on a row this statement inserted, our transaction's on one it updated.
    RETURNING s.tracking_number, s.id, s.xmax = 0 AS inserted
)
SELECT tracking_number, id, inserted FROM up
UNION ALL
SELECT s.tracking_number, s.id, false FROM shipments_shipment s
WHERE s.tracking_number = ANY(ARRAY(SELECT f.tracking_number FROM facts f))
  AND NOT EXISTS (SELECT 1 FROM up WHERE up.tracking_number = s.tracking_number)
"""

# `_UPSERT_SHIPMENTS` with the ids `_PROBE_DRAWING_SHIPMENTS` gave, answering nothing: sent
# after the batch's COPY without waiting. A tracking number another transaction created since
# the probe only has its blanks filled here; the events naming the drawn id then fail their
# foreign key at commit, the batch rolls back, and the run goes on from its checkpoint
# (warehouses.services), where the probe finds the shipment.
_INSERT_SHIPMENTS = f"""
INSERT INTO shipments_shipment AS s (
    id, tracking_number, order_number, carrier, transport_mode, origin_country,
    destination_country, weight_kg, currency, declared_value, metadata, status, stage,
    status_event_id, status_changed_at, last_event_at, created_at, updated_at)
SELECT f.id, f.tn, f.o, f.c, f.m, f.og, f.d, f.w, f.cur, f.v, '{{}}'::jsonb,
       coalesce(f.st, 'pending'), coalesce(f.sg, ''), f.se,
       CASE WHEN f.st IS NOT NULL THEN now() END, f.le, now(), now()
FROM json_to_recordset(%(facts)s::json) AS f(
    id bigint, tn text, o text, c text, m text, og text, d text, w numeric, cur text,
    v numeric, st text, sg text, se bigint, le timestamptz)
ORDER BY f.tn
{_FILL_BLANKS}"""

# A unit first seen as "other" takes the kind a later record names.
_UPSERT_UNITS = """
WITH up AS (
    INSERT INTO shipments_transportunit AS t (number, kind, created_at)
    SELECT number, kind, now() FROM unnest(%(number)s::text[], %(kind)s::text[]) AS u(number, kind)
    ORDER BY number
    ON CONFLICT (number) DO UPDATE SET kind = EXCLUDED.kind
    WHERE t.kind = 'other' AND EXCLUDED.kind <> 'other'
    RETURNING number, id
)
SELECT number, id FROM up
UNION ALL
SELECT u.number, u.id FROM shipments_transportunit u
WHERE u.number = ANY(%(number)s::text[])
  AND NOT EXISTS (SELECT 1 FROM up WHERE up.number = u.number)
"""

# Columns in the order the recorder writes them: numbers and vocabulary first, then the free
# text, which is the only part that may need COPY escaping (see `_copy_free_text`).
# Everything after run_id is known before the batch meets the database (`events_prepare`).
_COPY_EVENTS = (
    "COPY shipments_trackingevent (id, shipment_id, unit_id, warehouse_id, feed_id, run_id,"
    " code, status, stage, occurred_at, utc_offset_minutes, source_line, dedupe_key,"
    " recorded_at, tz_source, location_name, location_code, country, description, raw, extra)"
    " FROM STDIN"
)
_FREE_COLUMNS = 7
# COPY text format: a backslash, tab, newline or carriage return inside a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_CHUNK = 2000


def _copy_free_text(values: tuple[str, ...]) -> str:
    """The free-text columns of one COPY row, escaped only when a value needs it.

    Joining first and checking the joined text once is much cheaper per row than escaping each
    value; a value holding a tab shows up as one tab too many.
    """
    text = "\t".join(values)
    if (
        text.count("\t") == _FREE_COLUMNS - 1
        and "\\" not in text
        and "\n" not in text
        and "\r" not in text
        and "\x00" not in text
    ):
        return text
    if "\x00" in text:
        # What psycopg's own dumper says; PostgreSQL cannot store the byte in text.
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return "\t".join(value.translate(_COPY_ESCAPES) for value in values)


# An event on a unit touches every shipment inside the unit at that moment, found through the
# membership intervals: one event row, never one per parcel.
_TOUCH = f"""
INSERT INTO hub_touched (shipment_id, created, stage_entered_at)
SELECT unnest(%(shipments)s::bigint[]), false, NULL::timestamptz
UNION ALL
SELECT c.id, true, c.at
FROM unnest(%(created)s::bigint[], %(entered)s::timestamptz[]) AS c(id, at)
UNION ALL
SELECT m.shipment_id, false, NULL
FROM unnest(%(units)s::bigint[], %(times)s::timestamptz[]) AS i(unit_id, occurred_at)
JOIN shipments_unitmembership m
  ON m.unit_id = i.unit_id AND {inside_unit("m", "i.occurred_at")}
"""

# A shipment the batch created is invisible to every other transaction until it commits.
_LOCK_TOUCHED = """
SELECT 1 FROM shipments_shipment
WHERE id IN (SELECT shipment_id FROM hub_touched WHERE NOT created)
ORDER BY id
FOR UPDATE
"""

# Status rules: the latest event by occurred_at decides, so a late report of an
# earlier event never moves a status back; after the first delivery only another delivery or a
# return counts; every change is written to the history with the event that caused it.
RECOMPUTE_SQL = f"""
WITH t AS (
    SELECT shipment_id AS id, bool_or(created) AS created, max(stage_entered_at) AS entered
    FROM hub_touched GROUP BY 1
),
-- A shipment the batch created already holds the state its events give it (_UPSERT_SHIPMENTS):
-- only the others are computed and updated here; both get history, estimates and notices.
eff AS (
    -- One index range per touched shipment. OFFSET 0 keeps the planner from flattening this
    -- into a hash join, which it picks with no statistics on hub_touched: a scan of the whole
    -- events table per batch, growing with every batch stored.
    SELECT t.id AS shipment_id, e.id, e.code, e.status, e.stage, e.occurred_at
    FROM t CROSS JOIN LATERAL (
        SELECT e.id, e.code, e.status, e.stage, e.occurred_at
        FROM shipments_trackingevent e WHERE e.shipment_id = t.id OFFSET 0
    ) e
    WHERE NOT t.created
    UNION ALL
    SELECT m.shipment_id, e.id, e.code, e.status, e.stage, e.occurred_at
    FROM shipments_unitmembership m
    JOIN t ON m.shipment_id = t.id AND NOT t.created
    JOIN shipments_trackingevent e
      ON e.unit_id = m.unit_id AND {inside_unit("m", "e.occurred_at")}
),
delivered AS (
    SELECT shipment_id, min(occurred_at) AS at FROM eff WHERE status = 'delivered'
    GROUP BY shipment_id
),
counted AS (
    SELECT eff.* FROM eff LEFT JOIN delivered d USING (shipment_id)
    WHERE eff.status <> ''
      AND (d.at IS NULL OR eff.occurred_at <= d.at
           OR eff.code IN {sql_list(COUNTED_AFTER_DELIVERY)})
),
latest AS (
    SELECT DISTINCT ON (shipment_id) shipment_id, id, status
    FROM counted ORDER BY shipment_id, occurred_at DESC, id DESC
),
latest_stage AS (
    SELECT DISTINCT ON (shipment_id) shipment_id, stage
    FROM counted WHERE stage <> '' ORDER BY shipment_id, occurred_at DESC, id DESC
),
last_event AS (SELECT shipment_id, max(occurred_at) AS at FROM eff GROUP BY shipment_id),
changed AS (
    UPDATE shipments_shipment s SET
        status = coalesce(l.status, s.status),
        stage = coalesce(ls.stage, s.stage),
        status_event_id = coalesce(l.id, s.status_event_id),
        status_changed_at = CASE WHEN l.status IS DISTINCT FROM old.status AND l.status IS NOT NULL
                                 THEN now() ELSE s.status_changed_at END,
        last_event_at = le.at,
        updated_at = now()
    FROM last_event le
    JOIN shipments_shipment old ON old.id = le.shipment_id
    LEFT JOIN latest l ON l.shipment_id = le.shipment_id
    LEFT JOIN latest_stage ls ON ls.shipment_id = le.shipment_id
    WHERE s.id = le.shipment_id
      AND (s.status_event_id IS DISTINCT FROM coalesce(l.id, s.status_event_id)
           OR s.last_event_at IS DISTINCT FROM le.at
           OR s.stage IS DISTINCT FROM coalesce(ls.stage, s.stage))
    RETURNING s.id, old.status AS from_status, s.status AS to_status,
              old.stage AS from_stage, s.stage AS to_stage, s.status_event_id AS event_id
),
-- A shipment the batch created changed from pending to the state it was created in.
changes AS (
    SELECT * FROM changed
    UNION ALL
    SELECT s.id, 'pending', s.status, '', s.stage, s.status_event_id
    FROM t JOIN shipments_shipment s ON s.id = t.id
    WHERE t.created
), history AS (
    INSERT INTO shipments_statuschange (
        shipment_id, from_status, to_status, from_stage, to_stage, event_id, changed_at)
    SELECT id, from_status, to_status, from_stage, to_stage, event_id, now()
    FROM changes
    WHERE from_status <> to_status OR from_stage <> to_stage
    RETURNING 1
),
-- Delivery estimates (shipments.estimates) of the shipments this statement changed, anchored at
-- the first event of their current stage: written here, with their webhook notice, so an
-- estimate can never disagree with the status it was computed from.
stage_entered AS (
    SELECT c.shipment_id, min(c.occurred_at) AS at
    FROM counted c JOIN latest_stage ls USING (shipment_id)
    WHERE c.stage = ls.stage
    GROUP BY c.shipment_id
    UNION ALL
    SELECT id, entered FROM t WHERE t.created
),
est_src AS (
    SELECT c.id, c.to_status AS status, c.to_stage AS stage, se.at AS stage_entered_at
    FROM changes c LEFT JOIN stage_entered se ON se.shipment_id = c.id
),
{estimate_ctes("est_src")},
-- Webhook outbox (shipments.webhooks): written by this same statement, so a notification exists
-- exactly when its status change committed. A status change gives a status_changed notice; any
-- touched shipment gives a tracking_updated notice. Only for a shop's unarchived shipment with an
-- active endpoint subscribed to that type.
latest_any AS (
    SELECT DISTINCT ON (shipment_id) shipment_id, id
    FROM eff ORDER BY shipment_id, occurred_at DESC, id DESC
),
notices AS (
    SELECT c.id AS shipment_id, 'shipment.status_changed' AS event_type, 2 AS rank,
           c.from_status, c.to_status, c.from_stage, c.to_stage, c.event_id,
           NULL::jsonb AS extra
    FROM changes c WHERE c.from_status <> c.to_status
    UNION ALL
    SELECT t.id, 'shipment.tracking_updated', 1,
           coalesce(c.from_status, s.status), coalesce(c.to_status, s.status),
           coalesce(c.from_stage, s.stage), coalesce(c.to_stage, s.stage), la.id, NULL
    FROM t JOIN shipments_shipment s ON s.id = t.id
    LEFT JOIN changes c ON c.id = t.id
    LEFT JOIN latest_any la ON la.shipment_id = t.id
    UNION ALL
    SELECT en.shipment_id, 'shipment.estimate_changed', 3,
           c.to_status, c.to_status, c.to_stage, c.to_stage, NULL,
           jsonb_build_object('estimated_delivery', en.current,
                              'previous_estimated_delivery', en.previous)
    FROM est_notices en JOIN changes c ON c.id = en.shipment_id
),
subscribed AS (
    SELECT n.*, w.id AS endpoint_id, s.tracking_number, s.order_number
    FROM notices n
    JOIN shipments_shipment s ON s.id = n.shipment_id AND s.archived_at IS NULL
    JOIN shipments_webhookendpoint w
      ON w.shop_id = s.shop_id AND w.active AND w.event_types ? n.event_type
    -- Uncorrelated, so a one-time test: with no active endpoint at all, the notices (a sort of
    -- every touched shipment's events) are never built.
    WHERE EXISTS (SELECT 1 FROM shipments_webhookendpoint w0 WHERE w0.active)
),
messages AS (SELECT DISTINCT shipment_id, event_type, rank FROM subscribed),
message_counts AS (SELECT shipment_id, count(*) AS n FROM messages GROUP BY shipment_id),
sequences AS (
    INSERT INTO shipments_webhooksequence AS q (shipment_id, last)
    SELECT shipment_id, n FROM message_counts ORDER BY shipment_id
    ON CONFLICT (shipment_id) DO UPDATE SET last = q.last + EXCLUDED.last
    RETURNING shipment_id, last
),
numbered AS (
    SELECT m.shipment_id, m.event_type,
           q.last - mc.n + row_number() OVER (PARTITION BY m.shipment_id ORDER BY m.rank)
               AS sequence
    FROM messages m
    JOIN message_counts mc USING (shipment_id)
    JOIN sequences q USING (shipment_id)
),
outbox AS (
    INSERT INTO shipments_webhookdelivery (
        message_id, endpoint_id, shipment_id, event_type, sequence, data, state, attempts,
        next_attempt_at, last_error, created_at)
    SELECT gen_random_uuid(), sb.endpoint_id, sb.shipment_id, sb.event_type, nb.sequence,
           jsonb_build_object(
               'tracking_number', sb.tracking_number,
               'order_number', sb.order_number,
               'status', sb.to_status,
               'previous_status', sb.from_status,
               'stage', sb.to_stage,
               'previous_stage', sb.from_stage,
               'last_event_at', le.at,
               'event', CASE WHEN e.id IS NULL THEN NULL ELSE jsonb_build_object(
                   'id', e.id, 'code', e.code, 'status', e.status, 'stage', e.stage,
                   'occurred_at', e.occurred_at, 'utc_offset_minutes', e.utc_offset_minutes,
                   'location_name', e.location_name, 'location_code', e.location_code,
                   'country', e.country, 'description', e.description) END)
               || coalesce(sb.extra, '{{}}'::jsonb),
           'pending', 0, now(), '', now()
    FROM subscribed sb
    JOIN numbered nb USING (shipment_id, event_type)
    LEFT JOIN last_event le ON le.shipment_id = sb.shipment_id
    LEFT JOIN shipments_trackingevent e ON e.id = sb.event_id
    RETURNING 1
)
SELECT count(*) FROM history
"""


_ORIGIN_STAGES = frozenset({"first_mile", "export_customs"})
_DESTINATION_STAGES = frozenset({"import_customs", "last_mile"})


@dataclass(slots=True)
class ShipmentFacts:
    """What a batch says about a shipment; it only ever fills blanks (first value wins)."""

    order_number: str = ""
    carrier: str = ""
    transport_mode: str = ""
    origin_country: str = ""
    destination_country: str = ""
    weight_kg: Decimal | None = None
    currency: str = ""
    declared_value: Decimal | None = None

    def add(self, event: EventInput, stage: str) -> None:
        # Called once per event in the batch: plain assignments, no temporary object.
        self.order_number = self.order_number or event.order_number
        self.carrier = self.carrier or event.carrier
        self.transport_mode = self.transport_mode or event.transport_mode
        if stage in _ORIGIN_STAGES:
            self.origin_country = self.origin_country or event.country
        elif stage in _DESTINATION_STAGES:
            self.destination_country = self.destination_country or event.country
        if self.weight_kg is None:
            self.weight_kg = event.weight_kg

    def merge(self, other: ShipmentFacts) -> None:
        for name in self.__slots__:
            if getattr(self, name) in ("", None):
                setattr(self, name, getattr(other, name))


def _execute_binary(cursor: psycopg.Cursor[Any], sql: str, params: Any) -> None:
    """Execute with binary parameters, visible to Django's query log (query-count tests)."""
    started = time.monotonic()
    cursor.execute(sql, params, binary=True)
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _ids(
    cursor: psycopg.Cursor[Any],
    sql: str,
    params: Mapping[str, Any],
    names: list[str],
    inserted: set[int] | None = None,
) -> dict[str, int]:
    """name -> id from `sql`'s (name, id[, inserted]) rows; the ids inserted go to `inserted`."""
    _execute_binary(cursor, sql, params)
    rows = cursor.fetchall()
    missing = set(names) - {row[0] for row in rows}
    if missing:
        # Created by a concurrent transaction after our snapshot: a new statement sees them.
        _execute_binary(cursor, sql, params)
        rows += cursor.fetchall()
    if inserted is not None:
        inserted.update(int(row[1]) for row in rows if row[2])
    return {row[0]: int(row[1]) for row in rows}


@dataclass(slots=True)
class ShipmentState:
    """The status a shipment's events give it (RECOMPUTE_SQL's rules), for a new shipment."""

    status: str | None = None
    stage: str | None = None
    status_event_id: int | None = None
    last_event_at: datetime | None = None
    # The first event of the current stage: what delivery estimates are anchored at.
    stage_entered_at: datetime | None = None


_NO_STATE = ShipmentState()


def _shipment_states(
    events: Sequence[EventInput], candidates: Sequence[int], codes: Sequence[tuple[str, str]]
) -> dict[str, ShipmentState]:
    """RECOMPUTE_SQL's status rules over the batch's events, per tracking number.

    `status_event_id` is the event's index in `events` until the ids are drawn (new events are
    numbered in that order). Only used for the shipments the batch creates, whose events in the
    batch are all the events they have (a stored event has its shipment, and no unit can hold a
    shipment that did not exist). Keep in step with RECOMPUTE_SQL: the tests record the same
    events on a new and on a known shipment and compare.
    """
    # (occurred_at, index, code, status, stage): tuples compare by time, then by the order of
    # the ids, as the SQL orders.
    by_number: dict[str, list[tuple[datetime, int, str, str, str]]] = {}
    for index in candidates:
        event = events[index]
        if event.tracking_number:
            status, stage = codes[index]
            row = (event.occurred_at, index, event.code, status, stage)
            by_number.setdefault(event.tracking_number, []).append(row)
    states: dict[str, ShipmentState] = {}
    for number, rows in by_number.items():
        state = states[number] = ShipmentState(last_event_at=max(rows)[0])
        delivered = min((row[0] for row in rows if row[3] == "delivered"), default=None)
        counted = [
            row
            for row in rows
            if row[3]
            and (delivered is None or row[0] <= delivered or row[2] in COUNTED_AFTER_DELIVERY)
        ]
        if counted:
            latest = max(counted)
            state.status, state.status_event_id = latest[3], latest[1]
            staged = [row for row in counted if row[4]]
            if staged:
                stage = state.stage = max(staged)[4]
                state.stage_entered_at = min(row[0] for row in staged if row[4] == stage)
    return states


def _numbered(
    states: Mapping[str, ShipmentState], fresh: Sequence[int], event_ids: Sequence[int]
) -> dict[str, ShipmentState]:
    """`states` with their event's id for its index; none where that event is not new."""
    id_of = dict(zip(fresh, event_ids, strict=True))
    numbered: dict[str, ShipmentState] = {}
    for number, state in states.items():
        if state.status_event_id is None:
            numbered[number] = state
        elif state.status_event_id in id_of:
            # Built directly: dataclasses.replace inspects the fields on every call.
            numbered[number] = ShipmentState(
                state.status,
                state.stage,
                id_of[state.status_event_id],
                state.last_event_at,
                state.stage_entered_at,
            )
    return numbered


def _facts_document(
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
    params = {"facts": _facts_document(facts, states or {})}
    names = sorted(facts)
    if cursor is not None:
        return _ids(cursor, _UPSERT_SHIPMENTS, params, names, inserted)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as binary:
        return _ids(binary, _UPSERT_SHIPMENTS, params, names, inserted)


def units_upsert(
    *, kinds: Mapping[str, str], cursor: psycopg.Cursor[Any] | None = None
) -> dict[str, int]:
    """Create missing transport units (number -> kind); number -> id, one statement."""
    if not kinds:
        return {}
    numbers = sorted(kinds)
    params = {"number": numbers, "kind": [kinds[n] or "other" for n in numbers]}
    if cursor is not None:
        return _ids(cursor, _UPSERT_UNITS, params, numbers)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as binary:
        return _ids(binary, _UPSERT_UNITS, params, numbers)


# code -> (status, stage) as plain strings, looked up once per event.
_STATUS_FOR: dict[str, tuple[str, str]] = {code: status_for(code) for code in EVENT_CODES}


def _extra_json(
    extra: Mapping[str, object], memo: dict[tuple[tuple[str, object], ...], str]
) -> str:
    """`extra` as JSON; the few shapes a batch repeats (a partner code on every row) once each."""
    if not extra:
        return "{}"
    # Only plain string keys and values: 1 and True are equal as dict keys but not as JSON.
    if all(type(key) is str and type(value) is str for key, value in extra.items()):
        key = tuple(extra.items())
        text = memo.get(key)
        if text is None:
            text = memo[key] = json.dumps(extra, ensure_ascii=False)
        return text
    return json.dumps(extra, default=str, ensure_ascii=False)


def _copy_number(value: int | None) -> str:
    return "\\N" if value is None else str(int(value))


@dataclass(slots=True)
class EventsRecording:
    """A batch between its statements and its COPY (see `events_record_start`)."""

    result: RecordResult
    rows: Callable[[], Iterator[str]]
    # With `defer_shipments`: the shipments' upsert and the touched shipments, as a script that
    # runs after the COPY (only `copy_unawaited` sends it).
    deferred: str = ""

    def finish(self) -> RecordResult:
        """Steps 3 and 4 of `events_record`, waiting for each."""
        if self.deferred:
            raise RuntimeError("a recording with deferred shipments is sent by copy_unawaited")
        result = self.result
        if result.created:
            with connection.cursor() as cursor:
                with cursor.copy(_COPY_EVENTS) as copy:
                    for chunk in self.rows():
                        copy.write(chunk)
                cursor.execute(_LOCK_TOUCHED)
                cursor.execute(RECOMPUTE_SQL, estimate_params())
                (changes,) = cursor.fetchone()
            result.status_changes = int(changes)
        return result

    def copy_unawaited(self) -> tuple[str, bool]:
        """COPY the new events, ending it without waiting; returns the script to send next, and
        whether a COPY was sent (then the script waits for its answer).

        The connection is busy until the COPY's answer is taken; the script (deferred
        shipments, lock, recompute) must then run in the same transaction, before it commits.
        """
        if not self.result.created:
            # Known events only: their facts may still fill a shipment's blanks.
            return self.deferred, False
        with (
            connection.cursor() as cursor,
            # The psycopg cursor itself: Django's debug wrapper (DEBUG, query-count tests) takes
            # no `writer`; the statement is logged below instead.
            cursor.cursor.copy(_COPY_EVENTS, writer=EndUnawaitedWriter(cursor.cursor)) as copy,
        ):
            for chunk in self.rows():
                copy.write(chunk)
        if connection.queries_logged:
            connection.queries_log.append({"sql": _COPY_EVENTS, "time": "0.000"})
        return self.deferred + recompute_script(), True


def events_record(
    *,
    events: Sequence[EventInput],
    feed_id: int | None,
    run_id: int | None,
    warehouse_id: int | None,
    source: str | None = None,
) -> RecordResult:
    """Record a batch of events; call inside a transaction (the caller commits the batch).

    1. Dedupe in Python within the batch and against stored keys (one indexed lookup, which
       also draws the ids of the new events).
    2. Upsert the shipments and units the batch names, getting their ids (one query each); a
       shipment it creates takes its final status from the batch's events. Note which
       shipments the new events touch.
    3. COPY the new events straight into the events table.
    4. Lock the touched shipments it did not create, recompute their status (RECOMPUTE_SQL),
       and record the history and estimates of all of them.

    Re-recording the same events is a no-op. Keys include the source (the feed by default), and
    a feed's runs hold the feed's advisory lock, so no concurrent writer can COPY the same key;
    if a caller breaks that rule the COPY fails on the unique index, the batch's transaction
    rolls back, and the retry finds the keys stored: nothing is duplicated or lost.
    """
    return events_record_start(
        events=events, feed_id=feed_id, run_id=run_id, warehouse_id=warehouse_id, source=source
    ).finish()


@dataclass(slots=True)
class PreparedEvents:
    """What `events_prepare` works out without the database."""

    events: Sequence[EventInput]
    times: list[str]
    keys: list[str]
    first_line: dict[str, int]
    repeats: list[tuple[int, int]]
    candidates: list[int]
    codes: list[tuple[str, str]]
    facts: dict[str, ShipmentFacts]
    units: dict[str, str]
    # Per event (candidates only): the COPY row after run_id, or None where writing it must
    # fail in the COPY itself (a NUL byte).
    copy_tails: list[str | None]
    states: dict[str, ShipmentState]


def _copy_tail(
    event: EventInput,
    status_stage: tuple[str, str],
    at: str,
    key: str,
    now: str,
    memo: dict[tuple[tuple[str, object], ...], str],
) -> str:
    """One event's COPY row from `code` on (see _COPY_EVENTS)."""
    free = _copy_free_text(
        (
            event.tz_source,
            event.location_name,
            event.location_code,
            event.country,
            event.description,
            event.raw,
            _extra_json(event.extra, memo),
        )
    )
    status, stage = status_stage
    return (
        f"{event.code}\t{status}\t{stage}\t{at}\t{int(event.utc_offset_minutes)}\t"
        f"{int(event.line)}\t{key}\t{now}\t{free}\n"
    )


def events_prepare(
    *, events: Sequence[EventInput], feed_id: int | None, source: str | None = None
) -> PreparedEvents:
    """The Python half of step 1 of `events_record`: keys, repeats, shipment facts.

    No query: a caller may run it while the database still works on its previous batch.
    """
    source_key = source if source is not None else f"feed:{feed_id}"
    # One isoformat per event serves both the key and the COPY row (PostgreSQL reads it as is).
    times = [event.occurred_at.isoformat() for event in events]
    keys = [_dedupe_hex(source_key, event, at) for event, at in zip(events, times, strict=True)]
    first_line: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    candidates: list[int] = []
    for index, key in enumerate(keys):
        seen = first_line.get(key)
        if seen is not None:
            repeats.append((events[index].line, seen))
            continue
        first_line[key] = events[index].line
        candidates.append(index)

    facts: dict[str, ShipmentFacts] = {}
    units: dict[str, str] = {}
    codes = [_STATUS_FOR.get(event.code) or status_for(event.code) for event in events]
    for event, (_, stage) in zip(events, codes, strict=True):
        if event.tracking_number:
            shipment = facts.get(event.tracking_number)
            if shipment is None:
                shipment = facts[event.tracking_number] = ShipmentFacts()
            shipment.add(event, stage)
        elif event.unit_number:
            units[event.unit_number] = units.get(event.unit_number) or event.unit_kind or "other"

    # The COPY text too, while the database may still be busy: the rows are written by hand,
    # since psycopg's write_row adapts every value of every row one by one.
    now = timezone.now().isoformat()
    memo: dict[tuple[tuple[str, object], ...], str] = {}
    tails: list[str | None] = [None] * len(events)
    for index in candidates:
        # A row that cannot be written (a NUL byte) fails in the COPY, as it always did.
        with contextlib.suppress(psycopg.DataError):
            tails[index] = _copy_tail(
                events[index], codes[index], times[index], keys[index], now, memo
            )
    states = _shipment_states(events, candidates, codes)
    return PreparedEvents(
        events, times, keys, first_line, repeats, candidates, codes, facts, units, tails, states
    )


def events_record_start(
    *,
    events: Sequence[EventInput],
    feed_id: int | None,
    run_id: int | None,
    warehouse_id: int | None,
    source: str | None = None,
    prepared: PreparedEvents | None = None,
    defer_shipments: bool = False,
) -> EventsRecording:
    """Steps 1 and 2 of `events_record`; the caller finishes with `finish()` or
    `copy_unawaited()`.

    For a caller that sends the end of its transaction without waiting (warehouses.services):
    the result's counts are known before the COPY, so its own statements go first. It may pass
    `prepared` (`events_prepare` of the same events and source), worked out earlier. With
    `defer_shipments` (only with `copy_unawaited`), one statement finds the known shipments and
    draws the new ones' ids; their upsert is sent after the COPY, without waiting, instead of
    before it.
    """
    if not events:
        return EventsRecording(result=RecordResult(), rows=lambda: iter(()))
    if prepared is None or len(prepared.events) != len(events):
        prepared = events_prepare(events=events, feed_id=feed_id, source=source)
    times, keys, first_line = prepared.times, prepared.keys, prepared.first_line
    repeats, candidates, codes = list(prepared.repeats), prepared.candidates, prepared.codes
    facts, units = prepared.facts, prepared.units

    connection.ensure_connection()
    # Django's cursors bind parameters client-side (as SQL literals); the big arrays of this
    # path travel faster as binary parameters of a plain psycopg cursor on the same connection
    # (same transaction).
    with connection.cursor() as cursor, psycopg.Cursor(connection.connection) as binary:
        stored: dict[str, tuple[Any, Any]] = {}
        new_ids: list[int] = []
        created: set[int] = set()
        if defer_shipments:
            shipment_ids = _probe_drawing_shipments(
                binary, prepared, stored=stored, new_ids=new_ids, created=created
            )
        else:
            cursor.execute(_TOUCHED_DDL)
            _execute_binary(
                binary, _EXISTING_KEYS, {"keys": " ".join(first_line), "count": len(first_line)}
            )
            for key, run, line, new_id in binary.fetchall():
                if key is None:
                    new_ids.append(new_id)
                else:
                    stored[key] = (run, line)
        fresh = [i for i in candidates if keys[i] not in stored]
        if len(new_ids) != len(fresh):
            raise RuntimeError(f"{len(new_ids)} event ids drawn for {len(fresh)} new events")
        # Ids in file order, as a COPY would have numbered them (ties in time go to the later).
        new_ids.sort()
        if run_id is not None:
            for index in candidates:
                run, line = stored.get(keys[index], (None, None))
                if run == run_id and line != events[index].line:
                    repeats.append((events[index].line, int(line)))
        states = _numbered(prepared.states, fresh, new_ids)
        deferred: list[str] = []
        if defer_shipments:
            if facts:
                document = _facts_document(facts, states, shipment_ids)
                deferred.append(_script_statement(_INSERT_SHIPMENTS, {"facts": document}))
        else:
            shipment_ids = shipments_upsert(
                facts=facts, cursor=binary, states=states, inserted=created
            )
        if any(shipment_ids[number] in created for number in facts.keys() - states.keys()):
            # Every event of a shipment the batch created is new (see `_shipment_states`).
            raise RuntimeError("a new shipment's status event is not among the batch's new events")
        unit_ids = units_upsert(kinds=units, cursor=binary)
        # Each new event's subject, and what it touches: the touched shipments depend on the
        # memberships, not on the events, so they are noted before the COPY.
        subjects: list[str] = []
        touched_shipments: set[int] = set()
        touched_units: list[tuple[int, datetime]] = []
        for index, event_id in zip(fresh, new_ids, strict=True):
            event = events[index]
            if event.tracking_number:
                shipment_id = shipment_ids[event.tracking_number]
                touched_shipments.add(shipment_id)
                subjects.append(f"{event_id}\t{shipment_id}\t\\N")
            else:
                unit_id = unit_ids[event.unit_number]
                touched_units.append((unit_id, event.occurred_at))
                subjects.append(f"{event_id}\t\\N\t{unit_id}")
        if fresh:
            new_shipments = sorted(
                (shipment_ids[number], state.stage_entered_at)
                for number, state in states.items()
                if shipment_ids[number] in created and shipment_ids[number] in touched_shipments
            )
            touch: dict[str, Sequence[int | datetime | None]] = {
                "shipments": sorted(touched_shipments - created),
                "created": [pk for pk, _ in new_shipments],
                "entered": [at for _, at in new_shipments],
                "units": [unit for unit, _ in touched_units],
                "times": [at for _, at in touched_units],
            }
            if defer_shipments:
                arrays = {name: _array_text(values) for name, values in touch.items()}
                deferred += [_TOUCHED_DDL.strip(), _script_statement(_TOUCH, arrays)]
            else:
                _execute_binary(binary, _TOUCH, touch)

    tails = prepared.copy_tails

    def rows() -> Iterator[str]:
        fixed = "\t".join((_copy_number(warehouse_id), _copy_number(feed_id), _copy_number(run_id)))
        chunk: list[str] = []
        for index, subject in zip(fresh, subjects, strict=True):
            tail = tails[index]
            if tail is None:
                # Raises the reason the row cannot be written (see `_copy_free_text`).
                tail = _copy_tail(events[index], codes[index], times[index], keys[index], "", {})
            chunk.append(f"{subject}\t{fixed}\t{tail}")
            if len(chunk) >= _COPY_CHUNK:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)

    repeats.sort()
    result = RecordResult(
        created=len(fresh), duplicates=len(events) - len(fresh), repeated_lines=repeats
    )
    script = "".join(f"{statement.strip()};\n" for statement in deferred)
    return EventsRecording(result=result, rows=rows, deferred=script)


def _probe_drawing_shipments(
    cursor: psycopg.Cursor[Any],
    prepared: PreparedEvents,
    *,
    stored: dict[str, tuple[Any, Any]],
    new_ids: list[int],
    created: set[int],
) -> dict[str, int]:
    """`_PROBE_DRAWING_SHIPMENTS`: fills `stored` (key -> run, line), `new_ids` (the new
    events') and `created` (the drawn shipment ids); returns tracking number -> shipment id."""
    events = prepared.events
    numbers = sorted(prepared.facts)
    # `first_line` holds the keys of `candidates`, in the same order.
    key_numbers = [events[index].tracking_number or "~" for index in prepared.candidates]
    _execute_binary(
        cursor,
        _PROBE_DRAWING_SHIPMENTS,
        {
            "keys": " ".join(prepared.first_line),
            "key_numbers": " ".join(key_numbers),
            "count": len(prepared.first_line),
            "numbers": " ".join(numbers),
            "numbers_count": len(numbers),
        },
    )
    shipment_ids: dict[str, int] = {}
    drawn: list[int] = []
    for kind, name, run, number in cursor.fetchall():
        if kind == "stored":
            stored[name] = (run, number)
        elif kind == "event":
            new_ids.append(number)
        elif kind == "known":
            shipment_ids[name] = number
        else:
            drawn.append(number)
    missing = [number for number in numbers if number not in shipment_ids]
    if len(drawn) != len(missing):
        raise RuntimeError(f"{len(drawn)} shipment ids drawn for {len(missing)} new shipments")
    drawn.sort()
    shipment_ids.update(zip(missing, drawn, strict=True))
    created.update(drawn)
    return shipment_ids


def _array_text(values: Sequence[int | datetime | None]) -> str:
    """A PostgreSQL array literal of numbers or times (neither needs quoting), None as NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else v.isoformat() if isinstance(v, datetime) else str(int(v))
            for v in values
        )
        + "}"
    )


def _script_statement(sql: str, params: Mapping[str, Any]) -> str:
    """`sql` with its parameters bound client-side, for a script sent without waiting."""
    with psycopg.ClientCursor(connection.connection) as client:
        return client.mogrify(sql, params)


def recompute_script() -> str:
    """Step 4 of `events_record` as one parameterless script: lock, then recompute.

    For a caller that sends it without waiting for the answer, in the simple query protocol
    (which takes no parameters): the estimate settings are bound client-side.
    """
    connection.ensure_connection()
    with psycopg.ClientCursor(connection.connection) as client:
        recompute = client.mogrify(RECOMPUTE_SQL, estimate_params())
    return f"{_LOCK_TOUCHED.strip()};\n{recompute.strip()};\n"


def shipments_recompute(*, shipment_ids: Sequence[int]) -> int:
    """Recompute the status of the given shipments (after memberships change). Returns changes."""
    if not shipment_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_TOUCHED_DDL)
        cursor.execute(
            "INSERT INTO hub_touched (shipment_id) SELECT unnest(%s::bigint[])",
            [list(shipment_ids)],
        )
        cursor.execute(_LOCK_TOUCHED)
        cursor.execute(RECOMPUTE_SQL, estimate_params())
        (changes,) = cursor.fetchone()
    return int(changes)


# A shipment whose every event was withdrawn (an EPCIS error declaration) has nothing left to
# take a status from, so RECOMPUTE_SQL leaves it alone: put it back to `pending`, with history.
_RESET_EVENTLESS = f"""
WITH gone AS (
    SELECT s.id, s.status, s.stage FROM shipments_shipment s
    WHERE s.id = ANY(%s) AND (s.status <> 'pending' OR s.last_event_at IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM shipments_trackingevent e WHERE e.shipment_id = s.id)
      AND NOT EXISTS (
          SELECT 1 FROM shipments_unitmembership m
          JOIN shipments_trackingevent e
            ON e.unit_id = m.unit_id AND {inside_unit("m", "e.occurred_at")}
          WHERE m.shipment_id = s.id)
    FOR UPDATE OF s
), reset AS (
    UPDATE shipments_shipment s SET status = 'pending', stage = '', status_event_id = NULL,
           last_event_at = NULL, status_changed_at = now(), updated_at = now()
    FROM gone WHERE s.id = gone.id
    RETURNING s.id, gone.status AS from_status, gone.stage AS from_stage
), history AS (
    INSERT INTO shipments_statuschange (
        shipment_id, from_status, to_status, from_stage, to_stage, event_id, changed_at)
    SELECT id, from_status, 'pending', from_stage, '', NULL, now() FROM reset
    WHERE from_status <> 'pending' OR from_stage <> ''
    RETURNING 1
)
SELECT count(*) FROM reset
"""


def shipments_reset_eventless(*, shipment_ids: Sequence[int]) -> int:
    """Return shipments left without any event (own or through a unit) to `pending`."""
    if not shipment_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_RESET_EVENTLESS, [list(shipment_ids)])
        (count,) = cursor.fetchone()
    return int(count)
