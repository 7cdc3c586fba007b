"""The recorder's SQL, apart from the status rules (shipments.recording.status_rules).

The probe for stored dedupe keys (which also draws the new events' ids), the shipment and unit
upserts, the COPY of the new events, and `hub_batch_touched`, the temporary table of the shipments a
batch touches that the recompute reads. Most comments here explain a statement's shape: each is
built to keep the planner on index probes whatever the size of the events table.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.db import connection

from shipments.membership import inside_unit

# JIT off for the batch's transaction: without statistics on hub_batch_touched the planner's costs
# for the recompute pass jit_above_cost, and compiling it took longer (~0.3 s a batch) than
# running it. Every statement here is a short index-driven one that JIT cannot speed up.
# `low`/`high`: the time span of the batch's new own events of that shipment, which its stored
# bounds do not cover yet (the recompute reads the months of both, shipments.event_bounds).
# (Named anew when its columns change: behind PgBouncer a server connection outlives a deploy,
# and with it the old code's temporary table.)
TOUCHED = "hub_batch_touched"
TOUCHED_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS {TOUCHED} (
    shipment_id bigint, created boolean NOT NULL DEFAULT false, stage_entered_at timestamptz,
    low timestamptz, high timestamptz
) ON COMMIT DELETE ROWS;
TRUNCATE {TOUCHED};
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
# with its final status in one write (`shipment_states`) instead of inserting and updating it.
# Each key travels with its event's occurred_at (`k.at`, in the same order): the events table
# is partitioned by it (shipments/partitions.py), and the equality prunes each probe to one
# month's unique index (event_dedupe_key_time) instead of one probe per partition. The key
# hashes occurred_at, so a stored row with the key has that occurred_at: the same answer.
_KEY_STORED = """CROSS JOIN LATERAL (
        SELECT e.run_id, e.source_line FROM shipments_trackingevent e
        WHERE e.dedupe_key = k.key::uuid AND e.occurred_at = k.at::timestamptz OFFSET 0
    ) e"""


def _next_id(table: str) -> str:
    return f"nextval((SELECT pg_get_serial_sequence('{table}', 'id')::regclass))"


EXISTING_KEYS = f"""
WITH stored AS (
    SELECT k.key, e.run_id, e.source_line
    FROM unnest(string_to_array(%(keys)s, ' '), string_to_array(%(times)s, ' ')) AS k(key, at)
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
# without waiting (`INSERT_SHIPMENTS`; the events' foreign key is checked at commit).
PROBE_DRAWING_SHIPMENTS = f"""
WITH known AS (
    SELECT n.tn, s.id
    FROM unnest(string_to_array(%(numbers)s, ' ')) AS n(tn)
    CROSS JOIN LATERAL (
        SELECT s.id FROM shipments_shipment s WHERE s.tracking_number = n.tn OFFSET 0
    ) s
), stored AS (
    SELECT k.key, e.run_id, e.source_line
    FROM unnest(string_to_array(%(keys)s, ' '), string_to_array(%(times)s, ' '),
                string_to_array(%(key_numbers)s, ' ')) AS k(key, at, tn)
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
# (`shipment_states`, null for none: pending): RECOMPUTE_SQL's rules over all the events it
# has. RECOMPUTE_SQL then only records its history and estimate (`hub_batch_touched.created`, from
# `inserted` below) instead of computing its status again and updating it.
# The facts travel as one JSON document (see `shipments_upsert`).
UPSERT_SHIPMENTS = f"""
WITH facts AS (
    SELECT f.tn AS tracking_number, f.o AS order_number, f.c AS carrier, f.m AS transport_mode,
           f.og AS origin_country, f.d AS destination_country, f.w AS weight_kg,
           f.cur AS currency, f.v AS declared_value, f.st AS status, f.sg AS stage,
           f.se AS status_event_id, f.le AS last_event_at, f.fe AS first_event_at,
           f.sa AS status_event_at, f.sw AS status_warehouse_id
    FROM json_to_recordset(%(facts)s::json) AS f(
        tn text, o text, c text, m text, og text, d text, w numeric, cur text, v numeric,
        st text, sg text, se bigint, le timestamptz, fe timestamptz, sa timestamptz, sw bigint)
), up AS (
    INSERT INTO shipments_shipment AS s (
        tracking_number, order_number, carrier, transport_mode, origin_country,
        destination_country, weight_kg, currency, declared_value, metadata, status, stage,
        status_event_id, status_changed_at, last_event_at, created_at, updated_at,
        first_event_at, status_event_at, status_warehouse_id, status_warehouse_known)
    SELECT f.tracking_number, f.order_number, f.carrier, f.transport_mode, f.origin_country,
           f.destination_country, f.weight_kg, f.currency, f.declared_value, '{{}}'::jsonb,
           coalesce(f.status, 'pending'), coalesce(f.stage, ''), f.status_event_id,
           CASE WHEN f.status IS NOT NULL THEN now() END, f.last_event_at, now(), now(),
           f.first_event_at, f.status_event_at, f.status_warehouse_id,
           f.status_event_id IS NOT NULL
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

# `UPSERT_SHIPMENTS` with the ids `PROBE_DRAWING_SHIPMENTS` gave, answering nothing: sent
# after the batch's COPY without waiting. A tracking number another transaction created since
# the probe only has its blanks filled here; the events naming the drawn id then fail their
# foreign key at commit, the batch rolls back, and the run goes on from its checkpoint
# (the warehouses app's ingest worker), where the probe finds the shipment.
INSERT_SHIPMENTS = f"""
INSERT INTO shipments_shipment AS s (
    id, tracking_number, order_number, carrier, transport_mode, origin_country,
    destination_country, weight_kg, currency, declared_value, metadata, status, stage,
    status_event_id, status_changed_at, last_event_at, created_at, updated_at, first_event_at,
    status_event_at, status_warehouse_id, status_warehouse_known)
SELECT f.id, f.tn, f.o, f.c, f.m, f.og, f.d, f.w, f.cur, f.v, '{{}}'::jsonb,
       coalesce(f.st, 'pending'), coalesce(f.sg, ''), f.se,
       CASE WHEN f.st IS NOT NULL THEN now() END, f.le, now(), now(), f.fe, f.sa, f.sw,
       f.se IS NOT NULL
FROM json_to_recordset(%(facts)s::json) AS f(
    id bigint, tn text, o text, c text, m text, og text, d text, w numeric, cur text,
    v numeric, st text, sg text, se bigint, le timestamptz, fe timestamptz, sa timestamptz,
    sw bigint)
ORDER BY f.tn
{_FILL_BLANKS}"""

# A unit first seen as "other" takes the kind a later record names.
UPSERT_UNITS = """
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
# text, which is the only part that may need COPY escaping (see `copy_free_text`).
# Everything after run_id is known before the batch meets the database (`events_prepare`).
COPY_EVENTS = (
    "COPY shipments_trackingevent (id, shipment_id, unit_id, warehouse_id, feed_id, run_id,"
    " code, status, stage, occurred_at, utc_offset_minutes, source_line, dedupe_key,"
    " recorded_at, tz_source, location_name, location_code, country, description, raw, extra)"
    " FROM STDIN"
)


# An event on a unit touches every shipment inside the unit at that moment, found through the
# membership intervals: one event row, never one per parcel.
TOUCH = f"""
INSERT INTO {TOUCHED} (shipment_id, created, stage_entered_at, low, high)
SELECT k.id, false, NULL::timestamptz, k.low, k.high
FROM unnest(%(shipments)s::bigint[], %(lows)s::timestamptz[], %(highs)s::timestamptz[])
    AS k(id, low, high)
UNION ALL
SELECT c.id, true, c.at, NULL, NULL
FROM unnest(%(created)s::bigint[], %(entered)s::timestamptz[]) AS c(id, at)
UNION ALL
SELECT m.shipment_id, false, NULL, NULL, NULL
FROM unnest(%(units)s::bigint[], %(times)s::timestamptz[]) AS i(unit_id, occurred_at)
JOIN shipments_unitmembership m
  ON m.unit_id = i.unit_id AND {inside_unit("m", "i.occurred_at")}
"""

# A shipment the batch created is invisible to every other transaction until it commits.
LOCK_TOUCHED = f"""
SELECT 1 FROM shipments_shipment
WHERE id IN (SELECT shipment_id FROM {TOUCHED} WHERE NOT created)
ORDER BY id
FOR UPDATE
"""


def execute_binary(cursor: psycopg.Cursor[Any], sql: str, params: Any) -> None:
    """Execute with binary parameters, visible to Django's query log (query-count tests)."""
    started = time.monotonic()
    cursor.execute(sql, params, binary=True)
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
