"""The status rules, in SQL and in Python side by side.

A shipment's status is the one its latest event (by occurred_at) gives it, so a late report of
an earlier event never moves a status back; a unit's event counts for every parcel inside the
unit at that moment (shipments.membership); after the first delivery only the codes of
`COUNTED_AFTER_DELIVERY` still count; the stage is the latest non-empty one; every change is
written to the history with the event that caused it.

- `RECOMPUTE_SQL` applies the rules set-based to the shipments a batch touched
  (`hub_batch_touched`), and in the same statement writes their history, delivery estimates,
  webhook notices and buyer notification moments.
- `shipment_states` is its Python twin, for the shipments a batch creates: all their events are
  in the batch, so they are created in their final state instead of inserted and updated.
  tests/shipments/test_recording.py records the same events on a new and on a known shipment
  and compares: change both together.
- `shipments_reset_eventless` puts a shipment left without any event back to `pending`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.db import connection
from django.db.backends.utils import CursorWrapper

from shipments.claiming import SHOP_ORDER_NUMBER_SQL
from shipments.event_bounds import event_at_recorded, own_events_within
from shipments.membership import inside_unit
from shipments.notifications.moments import moment_ctes
from shipments.recording.estimates import estimate_ctes, estimate_params
from shipments.recording.inputs import EventInput
from shipments.recording.statements import LOCK_TOUCHED, TOUCHED, TOUCHED_DDL
from shipments.statuses import COUNTED_AFTER_DELIVERY, Status, sql_list

_DELIVERED = Status.DELIVERED.value

# The rules of the module's docstring over the touched shipments' events, own and through units.
RECOMPUTE_SQL = f"""
WITH t AS (
    SELECT shipment_id AS id, bool_or(created) AS created, max(stage_entered_at) AS entered,
           min(low) AS low, max(high) AS high
    FROM {TOUCHED} GROUP BY 1
),
-- A shipment the batch created already holds the state its events give it (UPSERT_SHIPMENTS):
-- only the others are computed and updated here; both get history, estimates and notices.
eff AS (
    -- One index range per touched shipment. OFFSET 0 keeps the planner from flattening this
    -- into a hash join, which it picks with no statistics on hub_batch_touched: a scan of the
    -- whole events table per batch, growing with every batch stored. The shipment's stored
    -- bounds, widened by the batch's new events, prune the range to the months that hold them.
    SELECT t.id AS shipment_id, e.id, e.code, e.status, e.stage, e.occurred_at, e.warehouse_id
    FROM t JOIN shipments_shipment ts ON ts.id = t.id
    CROSS JOIN LATERAL (
        SELECT e.id, e.code, e.status, e.stage, e.occurred_at, e.warehouse_id
        FROM shipments_trackingevent e
        WHERE e.shipment_id = t.id
          AND {own_events_within("ts", "e.occurred_at", also=("t.low", "t.high"))}
        OFFSET 0
    ) e
    WHERE NOT t.created
    UNION ALL
    SELECT m.shipment_id, e.id, e.code, e.status, e.stage, e.occurred_at, e.warehouse_id
    FROM shipments_unitmembership m
    JOIN t ON m.shipment_id = t.id AND NOT t.created
    JOIN shipments_trackingevent e
      ON e.unit_id = m.unit_id AND {inside_unit("m", "e.occurred_at")}
),
delivered AS (
    SELECT shipment_id, min(occurred_at) AS at FROM eff WHERE status = '{_DELIVERED}'
    GROUP BY shipment_id
),
counted AS (
    SELECT eff.* FROM eff LEFT JOIN delivered d USING (shipment_id)
    WHERE eff.status <> ''
      AND (d.at IS NULL OR eff.occurred_at <= d.at
           OR eff.code IN {sql_list(COUNTED_AFTER_DELIVERY)})
),
latest AS (
    SELECT DISTINCT ON (shipment_id) shipment_id, id, status, occurred_at, warehouse_id
    FROM counted ORDER BY shipment_id, occurred_at DESC, id DESC
),
latest_stage AS (
    SELECT DISTINCT ON (shipment_id) shipment_id, stage
    FROM counted WHERE stage <> '' ORDER BY shipment_id, occurred_at DESC, id DESC
),
last_event AS (
    SELECT shipment_id, max(occurred_at) AS at, min(occurred_at) AS first_at
    FROM eff GROUP BY shipment_id
),
-- first_event_at and status_event_at are bounds for reads to prune by, status_warehouse_id what
-- the dashboard counts by (Shipment's comments): a row whose only change is there (one written
-- before they existed) is updated too, but is no change of the shipment's state (`moved`): no
-- history, estimate or notice.
changed AS (
    UPDATE shipments_shipment s SET
        status = coalesce(l.status, s.status),
        stage = coalesce(ls.stage, s.stage),
        status_event_id = coalesce(l.id, s.status_event_id),
        status_changed_at = CASE WHEN l.status IS DISTINCT FROM old.status AND l.status IS NOT NULL
                                 THEN now() ELSE s.status_changed_at END,
        status_event_at = CASE WHEN l.id IS NOT NULL THEN l.occurred_at
                               ELSE s.status_event_at END,
        status_warehouse_id = CASE WHEN l.id IS NOT NULL THEN l.warehouse_id
                                   ELSE s.status_warehouse_id END,
        status_warehouse_known = l.id IS NOT NULL OR s.status_warehouse_known,
        last_event_at = le.at,
        first_event_at = le.first_at,
        updated_at = now()
    FROM last_event le
    JOIN shipments_shipment old ON old.id = le.shipment_id
    LEFT JOIN latest l ON l.shipment_id = le.shipment_id
    LEFT JOIN latest_stage ls ON ls.shipment_id = le.shipment_id
    WHERE s.id = le.shipment_id
      AND (s.status_event_id IS DISTINCT FROM coalesce(l.id, s.status_event_id)
           OR s.last_event_at IS DISTINCT FROM le.at
           OR s.stage IS DISTINCT FROM coalesce(ls.stage, s.stage)
           OR s.first_event_at IS DISTINCT FROM le.first_at
           OR s.status_event_at IS DISTINCT FROM coalesce(l.occurred_at, s.status_event_at)
           OR (l.id IS NOT NULL AND NOT s.status_warehouse_known))
    RETURNING s.id, old.status AS from_status, s.status AS to_status,
              old.stage AS from_stage, s.stage AS to_stage, s.status_event_id AS event_id,
              s.status_event_at AS event_at,
              (old.status_event_id IS DISTINCT FROM s.status_event_id
               OR old.last_event_at IS DISTINCT FROM s.last_event_at
               OR old.stage IS DISTINCT FROM s.stage) AS moved
),
-- A shipment the batch created changed from pending to the state it was created in.
changes AS (
    SELECT id, from_status, to_status, from_stage, to_stage, event_id, event_at
    FROM changed WHERE moved
    UNION ALL
    SELECT s.id, 'pending', s.status, '', s.stage, s.status_event_id, s.status_event_at
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
-- Buyer notifications' outbox (shipments.notifications.moments), like the webhooks' below.
{moment_ctes("changes")},
-- Delivery estimates (shipments.recording.estimates) of the shipments this statement changed,
-- anchored at the first event of their current stage: written here, with their webhook notice,
-- so an estimate can never disagree with the status it was computed from.
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
-- active endpoint subscribed to that type. Each notice carries its event's time (`event_at`),
-- so the event is read in its month (shipments.event_bounds).
latest_any AS (
    SELECT DISTINCT ON (shipment_id) shipment_id, id, occurred_at
    FROM eff ORDER BY shipment_id, occurred_at DESC, id DESC
),
notices AS (
    SELECT c.id AS shipment_id, 'shipment.status_changed' AS event_type, 2 AS rank,
           c.from_status, c.to_status, c.from_stage, c.to_stage, c.event_id, c.event_at,
           NULL::jsonb AS extra
    FROM changes c WHERE c.from_status <> c.to_status
    UNION ALL
    SELECT t.id, 'shipment.tracking_updated', 1,
           coalesce(c.from_status, s.status), coalesce(c.to_status, s.status),
           coalesce(c.from_stage, s.stage), coalesce(c.to_stage, s.stage), la.id,
           la.occurred_at, NULL
    FROM t JOIN shipments_shipment s ON s.id = t.id
    LEFT JOIN changes c ON c.id = t.id
    LEFT JOIN latest_any la ON la.shipment_id = t.id
    UNION ALL
    SELECT en.shipment_id, 'shipment.estimate_changed', 3,
           c.to_status, c.to_status, c.to_stage, c.to_stage, NULL, NULL,
           jsonb_build_object('estimated_delivery', en.current,
                              'previous_estimated_delivery', en.previous)
    FROM est_notices en JOIN changes c ON c.id = en.shipment_id
),
subscribed AS (
    SELECT n.*, w.id AS endpoint_id, s.tracking_number, {SHOP_ORDER_NUMBER_SQL} AS order_number
    FROM notices n
    JOIN shipments_shipment s ON s.id = n.shipment_id AND s.archived_at IS NULL
    JOIN shipments_webhookendpoint w
      ON w.shop_id = s.shop_id AND w.active AND w.event_types ? n.event_type
    -- Uncorrelated, so a one-time test: with no active endpoint at all, the notices (a sort of
    -- every touched shipment's events) are never built.
    WHERE EXISTS (SELECT 1 FROM shipments_webhookendpoint w0 WHERE w0.active)
      -- An unproven claim hears of events from its registration on only (docs/claiming.md).
      AND (s.claim_limited_since IS NULL OR n.event_id IS NULL OR EXISTS (
          SELECT 1 FROM shipments_trackingevent ne
          WHERE ne.id = n.event_id AND {event_at_recorded("ne.occurred_at", "n.event_at")}
            AND ne.occurred_at >= s.claim_limited_since))
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
    LEFT JOIN shipments_trackingevent e
      ON e.id = sb.event_id AND {event_at_recorded("e.occurred_at", "sb.event_at")}
    RETURNING 1
)
SELECT count(*) FROM history
"""


@dataclass(slots=True)
class ShipmentState:
    """The status a shipment's events give it (RECOMPUTE_SQL's rules), for a new shipment."""

    status: str | None = None
    stage: str | None = None
    status_event_id: int | None = None
    last_event_at: datetime | None = None
    # The first event of the current stage: what delivery estimates are anchored at.
    stage_entered_at: datetime | None = None
    first_event_at: datetime | None = None
    status_event_at: datetime | None = None
    # The status event's warehouse: the batch's run's, set once its id is drawn (a new
    # shipment's status event is one of the batch's new events, which all carry it).
    status_warehouse_id: int | None = None


def shipment_states(
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
        state = states[number] = ShipmentState(
            last_event_at=max(rows)[0], first_event_at=min(rows)[0]
        )
        delivered = min((row[0] for row in rows if row[3] == _DELIVERED), default=None)
        counted = [
            row
            for row in rows
            if row[3]
            and (delivered is None or row[0] <= delivered or row[2] in COUNTED_AFTER_DELIVERY)
        ]
        if counted:
            latest = max(counted)
            state.status, state.status_event_id = latest[3], latest[1]
            state.status_event_at = latest[0]
            staged = [row for row in counted if row[4]]
            if staged:
                stage = state.stage = max(staged)[4]
                state.stage_entered_at = min(row[0] for row in staged if row[4] == stage)
    return states


def recompute_script() -> str:
    """Step 4 of `events_record` as one parameterless script: lock, then recompute.

    For a caller that sends it without waiting for the answer, in the simple query protocol
    (which takes no parameters): the estimate settings are bound client-side.
    """
    connection.ensure_connection()
    with psycopg.ClientCursor(connection.connection) as client:
        recompute = client.mogrify(RECOMPUTE_SQL, estimate_params())
    return f"{LOCK_TOUCHED.strip()};\n{recompute.strip()};\n"


def shipments_recompute(*, shipment_ids: Sequence[int]) -> int:
    """Recompute the status of the given shipments (after memberships change). Returns changes."""
    if not shipment_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(TOUCHED_DDL)
        cursor.execute(
            f"INSERT INTO {TOUCHED} (shipment_id) SELECT unnest(%s::bigint[])",
            [list(shipment_ids)],
        )
        return touched_recompute(cursor)


def touched_recompute(cursor: CursorWrapper) -> int:
    """Lock the shipments in `hub_batch_touched` the batch did not create, and recompute them all
    (step 4 of `events_record`); returns the status changes."""
    cursor.execute(LOCK_TOUCHED)
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
           status_event_at = NULL, status_warehouse_id = NULL, status_warehouse_known = false,
           last_event_at = NULL, first_event_at = NULL,
           status_changed_at = now(), updated_at = now()
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
