"""Delivery estimates from the hub's own history, in set-based SQL.

1. `estimate_stats_refresh` (scheduled) rebuilds `DeliveryEstimateStat`: for shipments delivered
   in the last ESTIMATE_WINDOW_DAYS, the time from first entering each stage to delivery, as
   p50/p80/p90 per lane (origin -> destination x mode), per destination and globally.
2. `estimate_ctes` is the SQL that turns (shipment, status, stage, stage entered at) rows into
   estimates: the narrowest basis with at least ESTIMATE_MIN_SAMPLES deliveries (lane, then
   destination, then global), range = stage entry + p50 .. stage entry + p80, confidence from the
   sample count. It writes `ShipmentEstimate` rows and yields `est_notices` for the webhook.
   The recorder embeds it in its status statement (so estimates follow every status change in
   the same statement and transaction, at no extra query), and the scheduled refresh embeds it
   with its own outbox step.
3. `estimates_refresh` (scheduled, after the statistics) re-applies the statistics to every open
   shipment in chunks, skipping rows the recorder holds (it recomputes those itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from shipments.claiming import SHOP_ORDER_NUMBER_SQL
from shipments.membership import inside_unit
from shipments.statuses import DELIVERY_EXPECTED_STATUSES, STAGE_ORDER, sql_list

logger = logging.getLogger(__name__)

# Only shipments a delivery is still expected from carry an estimate.
_OPEN = sql_list(DELIVERY_EXPECTED_STATUSES)
_STAGES = sql_list(STAGE_ORDER)


def estimate_params() -> dict[str, int]:
    """Parameters every statement embedding `estimate_ctes` binds."""
    return {
        "est_min": settings.ESTIMATE_MIN_SAMPLES,
        "est_high": settings.ESTIMATE_CONFIDENCE_HIGH,
        "est_medium": settings.ESTIMATE_CONFIDENCE_MEDIUM,
    }


def _estimate_json(alias: str) -> str:
    return (
        f"jsonb_build_object('earliest', {alias}.earliest, 'latest', {alias}.latest, "
        f"'confidence', {alias}.confidence, 'basis', {alias}.basis, "
        f"'samples', {alias}.samples, 'stage', {alias}.stage)"
    )


def _utc_date(column: str) -> str:
    return f"({column} AT TIME ZONE 'UTC')::date"


def estimate_ctes(inputs: str) -> str:
    """CTEs (no leading WITH) estimating the shipments of CTE `inputs`.

    `inputs` has columns (id, status, stage, stage_entered_at), one row per shipment; the caller
    holds the shipments' row locks. Defines `est_new`, `est_old` and `est_notices(shipment_id,
    current, previous)`: the estimates whose date range (UTC days), confidence or basis changed,
    which is what shops are notified about (a few hours' drift is not news).
    A date already past is moved to now: an overdue parcel is expected from now on, not "last
    week". Binds %(est_min)s, %(est_high)s and %(est_medium)s (see `estimate_params`).
    """
    return f"""
est_in AS (
    SELECT i.id, i.status, i.stage, i.stage_entered_at,
           s.origin_country, s.destination_country, s.transport_mode
    FROM {inputs} i JOIN shipments_shipment s ON s.id = i.id
),
est_new AS (
    SELECT i.id AS shipment_id, i.stage, i.stage_entered_at,
           coalesce(st.basis, '') AS basis, coalesce(st.samples, 0) AS samples,
           CASE WHEN st.basis IS NOT NULL THEN greatest(
               i.stage_entered_at + st.p50_hours * interval '1 hour', now()) END AS earliest,
           CASE WHEN st.basis IS NOT NULL THEN greatest(
               i.stage_entered_at + st.p80_hours * interval '1 hour', now()) END AS latest,
           CASE WHEN st.basis IS NULL THEN ''
                WHEN st.samples >= %(est_high)s THEN 'high'
                WHEN st.samples >= %(est_medium)s THEN 'medium'
                ELSE 'low' END AS confidence
    FROM est_in i
    LEFT JOIN LATERAL (
        SELECT d.basis, d.samples, d.p50_hours, d.p80_hours
        FROM shipments_deliveryestimatestat d
        WHERE d.stage = i.stage
          AND ((d.basis = 'lane' AND d.samples >= %(est_min)s
                AND d.origin_country = i.origin_country
                AND d.destination_country = i.destination_country
                AND d.transport_mode = i.transport_mode)
               OR (d.basis = 'destination' AND d.samples >= %(est_min)s
                   AND d.destination_country = i.destination_country)
               OR d.basis = 'global')
        ORDER BY CASE d.basis WHEN 'lane' THEN 0 WHEN 'destination' THEN 1 ELSE 2 END
        LIMIT 1
    ) st ON true
    WHERE i.status IN {_OPEN} AND i.stage IN {_STAGES} AND i.stage_entered_at IS NOT NULL
),
est_old AS (
    SELECT e.* FROM shipments_shipmentestimate e JOIN est_in i ON i.id = e.shipment_id
),
est_upsert AS (
    INSERT INTO shipments_shipmentestimate AS e (
        shipment_id, stage, stage_entered_at, earliest, latest, basis, confidence, samples,
        computed_at)
    SELECT shipment_id, stage, stage_entered_at, earliest, latest, basis, confidence, samples,
           now()
    FROM est_new ORDER BY shipment_id
    ON CONFLICT (shipment_id) DO UPDATE SET
        stage = EXCLUDED.stage, stage_entered_at = EXCLUDED.stage_entered_at,
        earliest = EXCLUDED.earliest, latest = EXCLUDED.latest, basis = EXCLUDED.basis,
        confidence = EXCLUDED.confidence, samples = EXCLUDED.samples, computed_at = now()
    WHERE (e.stage, e.stage_entered_at, e.earliest, e.latest, e.basis, e.confidence, e.samples)
          IS DISTINCT FROM (EXCLUDED.stage, EXCLUDED.stage_entered_at, EXCLUDED.earliest,
                            EXCLUDED.latest, EXCLUDED.basis, EXCLUDED.confidence,
                            EXCLUDED.samples)
    RETURNING 1
),
est_dropped AS (
    DELETE FROM shipments_shipmentestimate e USING est_in i
    WHERE e.shipment_id = i.id
      AND NOT EXISTS (SELECT 1 FROM est_new n WHERE n.shipment_id = i.id)
    RETURNING 1
),
est_notices AS (
    SELECT n.shipment_id, {_estimate_json("n")} AS current,
           CASE WHEN o.earliest IS NULL THEN NULL ELSE {_estimate_json("o")} END AS previous
    FROM est_new n LEFT JOIN est_old o USING (shipment_id)
    WHERE n.earliest IS NOT NULL
      AND (o.earliest IS NULL
           OR {_utc_date("o.earliest")} <> {_utc_date("n.earliest")}
           OR {_utc_date("o.latest")} <> {_utc_date("n.latest")}
           OR o.confidence <> n.confidence OR o.basis <> n.basis)
)"""


# --- statistics ---------------------------------------------------------------------------------

# Remaining time from the first event of each stage to delivery, own events and transport-unit
# events alike (the recorder's membership rule). Lanes and destinations with an unknown key are
# left to the coarser bases rather than pooled under an empty key.
_STATS_SQL = f"""
WITH delivered AS (
    SELECT s.id, s.origin_country, s.destination_country, s.transport_mode,
           e.occurred_at AS delivered_at
    FROM shipments_shipment s JOIN shipments_trackingevent e ON e.id = s.status_event_id
    WHERE s.status = 'delivered'
      AND e.occurred_at >= now() - %(window_days)s * interval '1 day'
),
eff AS (
    SELECT e.shipment_id, e.stage, e.occurred_at
    FROM shipments_trackingevent e JOIN delivered d ON e.shipment_id = d.id
    WHERE e.status <> '' AND e.stage IN {_STAGES}
    UNION ALL
    SELECT m.shipment_id, e.stage, e.occurred_at
    FROM shipments_unitmembership m
    JOIN delivered d ON m.shipment_id = d.id
    JOIN shipments_trackingevent e
      ON e.unit_id = m.unit_id AND {inside_unit("m", "e.occurred_at")}
    WHERE e.status <> '' AND e.stage IN {_STAGES}
),
entered AS (
    SELECT shipment_id, stage, min(occurred_at) AS at FROM eff GROUP BY shipment_id, stage
),
remaining AS (
    SELECT d.origin_country AS o, d.destination_country AS dst, d.transport_mode AS m,
           en.stage, extract(epoch FROM d.delivered_at - en.at) / 3600.0 AS hours
    FROM delivered d JOIN entered en ON en.shipment_id = d.id
    WHERE en.at <= d.delivered_at
),
agg AS (
    SELECT CASE WHEN grouping(o) = 0 THEN 'lane'
                WHEN grouping(dst) = 0 THEN 'destination'
                ELSE 'global' END AS basis,
           coalesce(o, '') AS o, coalesce(dst, '') AS dst, coalesce(m, '') AS m, stage,
           count(*) AS samples,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS p50,
           percentile_cont(0.8) WITHIN GROUP (ORDER BY hours) AS p80,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90
    FROM remaining
    GROUP BY GROUPING SETS ((stage, o, dst, m), (stage, dst), (stage))
)
INSERT INTO shipments_deliveryestimatestat (
    basis, origin_country, destination_country, transport_mode, stage, samples,
    p50_hours, p80_hours, p90_hours, computed_at)
SELECT basis, o, dst, m, stage, samples, p50, p80, p90, now()
FROM agg
WHERE basis = 'global'
   OR (basis = 'destination' AND dst <> '')
   OR (basis = 'lane' AND o <> '' AND dst <> '' AND m <> '')
"""


def estimate_stats_refresh() -> int:
    """Rebuild the lane/stage statistics. Returns the number of rows written.

    Delete and insert in one transaction: readers see the old table or the new one, never a mix.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM shipments_deliveryestimatestat")
        cursor.execute(_STATS_SQL, {"window_days": settings.ESTIMATE_WINDOW_DAYS})
        written = cursor.rowcount
    logger.info("delivery estimate statistics: %s rows", written)
    return int(written)


# --- re-applying the statistics to open shipments -----------------------------------------------

# One chunk of shipments by id: open ones, and closed ones that still carry an estimate (a status
# set outside the recorder, such as `expired`). Rows the recorder holds are skipped: it
# recomputes them itself. A shipment without an estimate row (older than the estimator, or whose
# stage moved without the recorder) gets its stage entry from its events, own and unit.
_REFRESH_SQL = f"""
WITH cand AS (
    SELECT s.id, s.status, s.stage FROM shipments_shipment s
    WHERE s.id > %(after)s
      AND (s.status IN {_OPEN}
           OR EXISTS (SELECT 1 FROM shipments_shipmentestimate x WHERE x.shipment_id = s.id))
    ORDER BY s.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
need AS (
    SELECT c.id, c.stage FROM cand c
    LEFT JOIN shipments_shipmentestimate x ON x.shipment_id = c.id
    WHERE c.status IN {_OPEN} AND c.stage <> ''
      AND (x.shipment_id IS NULL OR x.stage <> c.stage)
),
need_eff AS (
    SELECT e.shipment_id, e.stage, e.occurred_at
    FROM shipments_trackingevent e JOIN need n ON e.shipment_id = n.id AND e.stage = n.stage
    WHERE e.status <> ''
    UNION ALL
    SELECT m.shipment_id, e.stage, e.occurred_at
    FROM shipments_unitmembership m
    JOIN need n ON m.shipment_id = n.id
    JOIN shipments_trackingevent e
      ON e.unit_id = m.unit_id AND {inside_unit("m", "e.occurred_at")}
    WHERE e.status <> '' AND e.stage = n.stage
),
entered AS (SELECT shipment_id, min(occurred_at) AS at FROM need_eff GROUP BY shipment_id),
est_src AS (
    SELECT c.id, c.status, c.stage,
           coalesce(CASE WHEN x.stage = c.stage THEN x.stage_entered_at END, en.at)
               AS stage_entered_at
    FROM cand c
    LEFT JOIN shipments_shipmentestimate x ON x.shipment_id = c.id
    LEFT JOIN entered en ON en.shipment_id = c.id
),
{estimate_ctes("est_src")},
est_subscribed AS (
    SELECT n.shipment_id, n.current, n.previous, w.id AS endpoint_id, s.tracking_number,
           {SHOP_ORDER_NUMBER_SQL} AS order_number, s.status, s.stage, s.last_event_at
    FROM est_notices n
    JOIN shipments_shipment s ON s.id = n.shipment_id AND s.archived_at IS NULL
    JOIN shipments_webhookendpoint w
      ON w.shop_id = s.shop_id AND w.active AND w.event_types ? 'shipment.estimate_changed'
),
est_sequences AS (
    INSERT INTO shipments_webhooksequence AS q (shipment_id, last)
    SELECT DISTINCT shipment_id, 1 FROM est_subscribed ORDER BY shipment_id
    ON CONFLICT (shipment_id) DO UPDATE SET last = q.last + 1
    RETURNING shipment_id, last
),
est_outbox AS (
    INSERT INTO shipments_webhookdelivery (
        message_id, endpoint_id, shipment_id, event_type, sequence, data, state, attempts,
        next_attempt_at, last_error, created_at)
    SELECT gen_random_uuid(), sb.endpoint_id, sb.shipment_id, 'shipment.estimate_changed',
           q.last,
           jsonb_build_object(
               'tracking_number', sb.tracking_number, 'order_number', sb.order_number,
               'status', sb.status, 'previous_status', sb.status,
               'stage', sb.stage, 'previous_stage', sb.stage,
               'last_event_at', sb.last_event_at, 'event', NULL,
               'estimated_delivery', sb.current,
               'previous_estimated_delivery', sb.previous),
           'pending', 0, now(), '', now()
    FROM est_subscribed sb JOIN est_sequences q USING (shipment_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM cand), (SELECT max(id) FROM cand),
       (SELECT count(*) FROM est_notices)
"""


@dataclass(frozen=True, slots=True)
class RefreshResult:
    shipments: int
    changed: int
    next_after: int | None


def estimates_refresh_chunk(*, after: int = 0, limit: int | None = None) -> RefreshResult:
    """Re-estimate one chunk of shipments with id > `after`, in one statement and transaction.

    Writes `shipment.estimate_changed` outbox rows in the same statement as the change.
    `next_after` is None when nothing is left.
    """
    params: dict[str, Any] = {
        **estimate_params(),
        "after": after,
        "limit": limit or settings.ESTIMATE_REFRESH_CHUNK,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REFRESH_SQL, params)
        count, last_id, changed = cursor.fetchone()
    return RefreshResult(
        shipments=int(count), changed=int(changed), next_after=int(last_id) if count else None
    )


def estimates_refresh(*, chunk: int | None = None) -> int:
    """Re-estimate every open shipment, chunk by chunk (each its own transaction, so the
    recorder never waits long). Returns how many estimates changed."""
    after = 0
    changed = 0
    while True:
        result = estimates_refresh_chunk(after=after, limit=chunk)
        changed += result.changed
        if result.next_after is None:
            break
        after = result.next_after
    logger.info("delivery estimates refreshed: %s changed", changed)
    return changed
