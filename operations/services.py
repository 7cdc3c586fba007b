"""Writes of the operations dashboard: the scheduled refresh of its tables, and acknowledgements.

The refresh rebuilds every pre-aggregated table in one transaction (readers see the old figures
until it commits) with a handful of set-based statements over events, shipments and runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from operations.models import DashboardRefresh, ExceptionAck, ExceptionItem
from operations.volume import volume_recount_all, volume_recount_changed
from shipments.event_bounds import own_events_within, status_event_at, status_event_warehouse
from shipments.statuses import MOVING_STATUSES

logger = logging.getLogger(__name__)

# Advisory-lock key: two refreshes at once would only do the same work twice.
_REFRESH_LOCK = (72_615, 1)

CUSTOMS_CODES = (
    "customs_held",
    "customs_rejected",
    "customs_export_held",
    "customs_export_rejected",
)

_FEED_HEALTH_SQL = """
DELETE FROM operations_feedhealth;
INSERT INTO operations_feedhealth (feed_id, last_run_id, last_run_at, last_run_status,
    last_success_at, every_seconds, runs_7d, records_7d, rejected_7d)
SELECT f.id, lr.id, lr.created_at, coalesce(lr.status, ''), ls.at,
       CASE i.period WHEN 'seconds' THEN i.every WHEN 'minutes' THEN i.every * 60
                     WHEN 'hours' THEN i.every * 3600 WHEN 'days' THEN i.every * 86400 END,
       coalesce(w.runs, 0), coalesce(w.records, 0), coalesce(w.rejected, 0)
FROM warehouses_feed f
LEFT JOIN django_celery_beat_periodictask pt ON pt.id = f.schedule_id AND pt.enabled
LEFT JOIN django_celery_beat_intervalschedule i ON i.id = pt.interval_id
LEFT JOIN LATERAL (
    SELECT r.id, r.created_at, r.status FROM warehouses_feedrun r
    WHERE r.feed_id = f.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1
) lr ON true
LEFT JOIN LATERAL (
    SELECT coalesce(r.finished_at, r.created_at) AS at FROM warehouses_feedrun r
    WHERE r.feed_id = f.id AND r.status IN ('succeeded', 'partial')
    ORDER BY r.created_at DESC, r.id DESC LIMIT 1
) ls ON true
LEFT JOIN (
    SELECT feed_id, count(*) AS runs, sum(records) AS records, sum(rejected) AS rejected
    FROM warehouses_feedrun
    WHERE created_at >= %(now)s - interval '7 days' AND status <> 'duplicate'
    GROUP BY feed_id
) w ON w.feed_id = f.id;
"""

# Shipments per status, warehouse of the status event and destination, from the shipments
# table: each row carries its status event's warehouse (Shipment.status_warehouse). A row where
# that is not recorded looks its event up, in its month (the second branch), found through a
# partial index (shipment_status_wh_unknown) that holds those rows only.
# Two branches, not one CASE: the planner costs a subquery under CASE as if it ran for every
# row (168M for 400k shipments), then compiled the statement with JIT (3 s). The second
# branch's ids come as an array, which the planner takes for a few rows whatever the column's
# statistics say: right after migration 0017 there are none, and the same cost came back.
STATUS_SNAPSHOT_SQL = f"""
SELECT status, warehouse_id, destination_country, count(*) FROM (
    SELECT s.status, CASE WHEN s.status_event_id IS NOT NULL THEN s.status_warehouse_id END
               AS warehouse_id, s.destination_country
    FROM shipments_shipment s
    WHERE s.archived_at IS NULL AND (s.status_warehouse_known OR s.status_event_id IS NULL)
    UNION ALL
    SELECT s.status, {status_event_warehouse("s")}, s.destination_country
    FROM shipments_shipment s
    WHERE s.id = ANY(ARRAY(
        SELECT u.id FROM shipments_shipment u
        WHERE NOT u.status_warehouse_known AND u.status_event_id IS NOT NULL))
      AND s.archived_at IS NULL
) x
GROUP BY 1, 2, 3
"""

_VOLUME_SQL = f"""
DELETE FROM operations_dailyshipments;
INSERT INTO operations_dailyshipments (day, destination_country, shipments)
SELECT (s.created_at AT TIME ZONE 'UTC')::date, s.destination_country, count(*)
FROM shipments_shipment s
WHERE s.created_at >= %(start)s
GROUP BY 1, 2;

DELETE FROM operations_statussnapshot;
INSERT INTO operations_statussnapshot (status, warehouse_id, destination_country, shipments)
{STATUS_SNAPSHOT_SQL.strip()};
"""

# 1. When each shipment entered each stage (its first event there) and, in the last-mile row,
#    when it was delivered. 2. Each stage lasts until the next stage is entered (or delivery).
_STAGES_SQL = """
DROP TABLE IF EXISTS ops_stage_entry, ops_stage_span;
CREATE TEMP TABLE ops_stage_entry ON COMMIT DROP AS
SELECT e.shipment_id, e.stage, min(e.occurred_at) AS entered_at,
       min(e.occurred_at) FILTER (WHERE e.code = 'delivered') AS delivered_at
FROM shipments_trackingevent e
WHERE e.shipment_id IS NOT NULL AND e.stage <> '' AND e.occurred_at >= %(start)s
GROUP BY 1, 2;

CREATE TEMP TABLE ops_stage_span ON COMMIT DROP AS
SELECT x.shipment_id, x.stage, x.entered_at, x.left_at,
       s.origin_country AS o, s.destination_country AS d, s.transport_mode AS m
FROM (
    SELECT se.shipment_id, se.stage, se.entered_at,
           coalesce(lead(se.entered_at) OVER w, se.delivered_at) AS left_at
    FROM ops_stage_entry se
    WINDOW w AS (PARTITION BY se.shipment_id ORDER BY se.entered_at, se.stage)
) x
JOIN shipments_shipment s ON s.id = x.shipment_id;

DELETE FROM operations_lanestagestat;
INSERT INTO operations_lanestagestat (origin_country, destination_country, transport_mode,
    stage, week, samples, p50_hours, p90_hours)
SELECT CASE WHEN GROUPING(o) = 1 THEN '*' ELSE o END,
       CASE WHEN GROUPING(d) = 1 THEN '*' ELSE d END,
       CASE WHEN GROUPING(m) = 1 THEN '*' ELSE m END,
       stage, CASE WHEN GROUPING(wk) = 1 THEN NULL ELSE wk END, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY hours),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY hours)
FROM (
    SELECT o, d, m, stage, date_trunc('week', left_at AT TIME ZONE 'UTC')::date AS wk,
           extract(epoch FROM left_at - entered_at) / 3600.0 AS hours
    FROM ops_stage_span WHERE left_at IS NOT NULL
    UNION ALL
    SELECT min(o), min(d), min(m), '', date_trunc('week', max(left_at) AT TIME ZONE 'UTC')::date,
           extract(epoch FROM max(left_at) - min(entered_at)) / 3600.0
    FROM ops_stage_span
    GROUP BY shipment_id
    HAVING bool_or(stage = 'last_mile' AND left_at IS NOT NULL)
) t
GROUP BY GROUPING SETS ((o, d, m, stage), (o, d, m, stage, wk), (stage), (stage, wk));

DELETE FROM operations_warehousedwellstat;
INSERT INTO operations_warehousedwellstat (warehouse_id, week, samples, p50_hours, p90_hours)
SELECT warehouse_id, CASE WHEN GROUPING(wk) = 1 THEN NULL ELSE wk END, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY hours),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY hours)
FROM (
    SELECT warehouse_id, date_trunc('week', dispatched AT TIME ZONE 'UTC')::date AS wk,
           extract(epoch FROM dispatched - received) / 3600.0 AS hours
    FROM (
        SELECT e.shipment_id, e.warehouse_id,
               min(e.occurred_at) FILTER (WHERE e.code = 'warehouse_received') AS received,
               max(e.occurred_at) FILTER (WHERE e.code = 'warehouse_dispatched') AS dispatched
        FROM shipments_trackingevent e
        WHERE e.code IN ('warehouse_received', 'warehouse_dispatched')
          AND e.shipment_id IS NOT NULL AND e.warehouse_id IS NOT NULL
          AND e.occurred_at >= %(start)s
        GROUP BY 1, 2
    ) p
    WHERE dispatched >= received
) t
GROUP BY GROUPING SETS ((warehouse_id), (warehouse_id, wk), (), (wk))
-- The empty grouping set yields a row even over no spans at all (no parcel has left a
-- warehouse yet): count 0 and no percentiles, which is no statistic.
HAVING count(*) > 0;
"""

# When each open shipment entered its current stage: its first event there (as in
# ops_stage_entry, which the statistics compute for every shipment of the window). Index
# lookups for the open shipments only, so the exceptions need not wait for the statistics.
# The shipment's own bounds keep each lookup to the months of its events, not the window's.
_CURRENT_ENTRY_SQL = f"""
DROP TABLE IF EXISTS ops_current_entry;
CREATE TEMP TABLE ops_current_entry ON COMMIT DROP AS
SELECT s.id AS shipment_id, x.entered_at
FROM shipments_shipment s
CROSS JOIN LATERAL (
    SELECT min(e.occurred_at) AS entered_at FROM shipments_trackingevent e
    WHERE e.shipment_id = s.id AND e.stage = s.stage AND e.occurred_at >= %(start)s
      AND {own_events_within("s", "e.occurred_at")}
) x
WHERE s.status = ANY(%(open)s) AND s.stage <> '' AND s.archived_at IS NULL;
"""

# Stale: open, in a stage for longer than the p90 of that stage on its lane (or of all lanes
# when the lane has too few samples to say).
_EXCEPTIONS_SQL = f"""
DROP TABLE IF EXISTS ops_exception;
CREATE TEMP TABLE ops_exception (
    shipment_id bigint, kind text, since timestamptz, stage text, lane text, detail text
) ON COMMIT DROP;

INSERT INTO ops_exception
SELECT s.id, 'stale', coalesce(se.entered_at, s.last_event_at), s.stage,
       s.origin_country || '→' || s.destination_country || ' ' || s.transport_mode,
       format('%%s h in %%s; p90 of the lane %%s h',
              round(extract(epoch FROM %(now)s - coalesce(se.entered_at, s.last_event_at))
                    / 3600.0), s.stage,
              round(coalesce(lane.p90_hours, overall.p90_hours)::numeric, 1))
FROM shipments_shipment s
LEFT JOIN ops_current_entry se ON se.shipment_id = s.id
LEFT JOIN operations_lanestagestat lane
       ON lane.week IS NULL AND lane.stage = s.stage AND lane.samples >= %(min_samples)s
      AND lane.origin_country = s.origin_country
      AND lane.destination_country = s.destination_country
      AND lane.transport_mode = s.transport_mode
LEFT JOIN operations_lanestagestat overall
       ON overall.week IS NULL AND overall.stage = s.stage AND overall.origin_country = '*'
      AND overall.samples >= %(min_samples)s
WHERE s.status = ANY(%(open)s) AND s.stage <> '' AND s.archived_at IS NULL
  AND coalesce(se.entered_at, s.last_event_at)
      < %(now)s - make_interval(secs => coalesce(lane.p90_hours, overall.p90_hours) * 3600);

INSERT INTO ops_exception
SELECT s.id, CASE WHEN s.status = 'failed_attempt' THEN 'failed_attempt' ELSE 'customs' END,
       coalesce(e.occurred_at, s.last_event_at), s.stage,
       s.origin_country || '→' || s.destination_country || ' ' || s.transport_mode,
       left(concat_ws(' ', e.code, 'at', nullif(e.location_name, ''), nullif(e.description, '')),
            300)
FROM shipments_shipment s
JOIN shipments_trackingevent e
  ON e.id = s.status_event_id AND {status_event_at("s", "e.occurred_at")}
WHERE s.archived_at IS NULL
  AND (s.status = 'failed_attempt' OR (s.status = 'exception' AND e.code = ANY(%(customs)s)));
"""

_DOCUMENTS_SQL = """
INSERT INTO ops_exception
SELECT m.shipment_id, 'documents', m.checked_at, s.stage,
       s.origin_country || '→' || s.destination_country || ' ' || s.transport_mode,
       left(concat_ws('; ', 'order ' || m.order_no,
                      'missing: ' || nullif(array_to_string(ARRAY(
                          SELECT jsonb_array_elements_text(m.missing)), ', '), ''),
                      'mismatch: ' || nullif(array_to_string(ARRAY(
                          SELECT jsonb_array_elements_text(m.mismatched)), ', '), '')), 300)
FROM warehouses_customsmatch m
JOIN shipments_shipment s ON s.id = m.shipment_id
WHERE s.archived_at IS NULL AND s.status NOT IN ('delivered', 'returned')
  AND (m.result = 'mismatch'
       OR (m.result = 'missing' AND m.checked_at < %(now)s - %(grace)s * interval '1 hour'));
"""

# Upsert on (shipment, kind) so ids stay stable; an acknowledgement made after the situation
# began still holds, one made before it does not.
_EXCEPTIONS_APPLY_SQL = """
DELETE FROM operations_exceptionitem i
WHERE NOT EXISTS (
    SELECT 1 FROM ops_exception x WHERE x.shipment_id = i.shipment_id AND x.kind = i.kind
);
INSERT INTO operations_exceptionitem (shipment_id, kind, since, stage, lane, detail,
    acknowledged_at, note)
SELECT DISTINCT ON (x.shipment_id, x.kind) x.shipment_id, x.kind, x.since, x.stage, x.lane,
       x.detail, ack.at, coalesce(note.note, '')
FROM ops_exception x
LEFT JOIN LATERAL (
    SELECT max(a.at) AS at FROM operations_exceptionack a
    WHERE a.shipment_id = x.shipment_id AND a.kind = x.kind AND a.acknowledged
      AND a.at >= x.since
) ack ON true
LEFT JOIN LATERAL (
    SELECT a.note FROM operations_exceptionack a
    WHERE a.shipment_id = x.shipment_id AND a.kind = x.kind AND a.note <> ''
    ORDER BY a.at DESC LIMIT 1
) note ON true
ORDER BY x.shipment_id, x.kind, x.since
ON CONFLICT (shipment_id, kind) DO UPDATE SET
    since = EXCLUDED.since, stage = EXCLUDED.stage, lane = EXCLUDED.lane,
    detail = EXCLUDED.detail, acknowledged_at = EXCLUDED.acknowledged_at, note = EXCLUDED.note;

-- Fresh statistics for the page's queue query: with the estimate left from an emptier queue
-- (306 rows for 34,000 at 10 M events), the planner joined every open item to its shipment
-- before keeping the first 50 (550 ms instead of about 20).
ANALYZE operations_exceptionitem;
"""


@dataclass(frozen=True)
class RefreshResult:
    refreshed: bool
    seconds: float


def _documents_matched() -> bool:
    """The three-document match is another engineer's model; use it only when it exists."""
    try:
        apps.get_model("warehouses", "CustomsMatch")
    except LookupError:
        return False
    return True


def dashboard_stats_due(*, now: datetime) -> bool:
    """Whether the scheduled refresh should rebuild the lane and dwell statistics: none yet, or
    the last ones are older than OPS_STATS_REFRESH_EVERY_SECONDS."""
    every = timedelta(seconds=settings.OPS_STATS_REFRESH_EVERY_SECONDS)
    return not DashboardRefresh.objects.filter(stats=True, finished_at__gt=now - every).exists()


def dashboard_refresh(*, stats: bool = True) -> RefreshResult:
    """Rebuild the dashboard's tables from events, shipments and runs.

    1. Take a transaction-level advisory lock (a refresh already running makes this a no-op).
    2. Events per day: every day with `stats` (or with no refresh before), else only the days
       runs since the last refresh touched (operations/volume.py). Feed health, shipments per
       day, status snapshot.
    3. With `stats`: stage entries -> stage spans -> lane p50/p90 (overall and per week),
       warehouse dwell. They read every event of the window, most of a refresh's time, and
       percentiles over 180 days move slowly: the scheduled job rebuilds them less often
       (`dashboard_stats_due`); the exceptions use the statistics last built.
    4. The exceptions queue, upserted so acknowledgements and admin selections survive.
    """
    started = timezone.now()
    clock = time.monotonic()
    window_days: int = settings.OPS_STATS_WINDOW_DAYS
    params: dict[str, Any] = {
        "now": started,
        "start": started - timedelta(days=window_days),
        "min_samples": settings.OPS_LANE_MIN_SAMPLES,
        "open": [status.value for status in MOVING_STATUSES],
        "customs": list(CUSTOMS_CODES),
        "grace": settings.OPS_DOCUMENTS_GRACE_HOURS,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", list(_REFRESH_LOCK))
        (locked,) = cursor.fetchone()
        if not locked:
            return RefreshResult(refreshed=False, seconds=0.0)
        # The aggregations sort millions of rows; in memory they are several times faster.
        cursor.execute("SET LOCAL work_mem = %s", [settings.OPS_REFRESH_WORK_MEM])
        previous = DashboardRefresh.objects.order_by("-started_at").first()
        if stats or previous is None:
            volume_recount_all(cursor, start=params["start"])
        else:
            volume_recount_changed(cursor, start=params["start"], since=previous.started_at)
        scripts = [_FEED_HEALTH_SQL, _VOLUME_SQL]
        if stats:
            scripts.append(_STAGES_SQL)
        scripts += [_CURRENT_ENTRY_SQL, _EXCEPTIONS_SQL]
        if _documents_matched():
            scripts.append(_DOCUMENTS_SQL)
        scripts.append(_EXCEPTIONS_APPLY_SQL)
        for script in scripts:
            for statement in _statements(script):
                cursor.execute(statement, params)
        seconds = time.monotonic() - clock
        DashboardRefresh.objects.create(
            started_at=started, finished_at=timezone.now(), seconds=seconds, stats=stats
        )
        DashboardRefresh.objects.filter(finished_at__lt=started - timedelta(days=7)).delete()
    logger.info(
        "operations dashboard refreshed in %.1f s (%s)",
        seconds,
        "with statistics" if stats else "statistics kept",
    )
    return RefreshResult(refreshed=True, seconds=seconds)


def _statements(script: str) -> list[str]:
    # Our own SQL, split on the statement terminators at line ends (none inside literals).
    return [s.strip() for s in script.split(";\n") if s.strip()]


def exceptions_acknowledge(
    *, items: Iterable[ExceptionItem], by: AbstractBaseUser | AnonymousUser | None, note: str = ""
) -> int:
    """Acknowledge exceptions (hidden from the queue until a new situation starts)."""
    return _exceptions_mark(items=items, by=by, note=note, acknowledged=True)


def exceptions_note(
    *, items: Iterable[ExceptionItem], by: AbstractBaseUser | AnonymousUser | None, note: str
) -> int:
    """Attach a note to exceptions without acknowledging them."""
    return _exceptions_mark(items=items, by=by, note=note, acknowledged=False)


def _exceptions_mark(
    *,
    items: Iterable[ExceptionItem],
    by: AbstractBaseUser | AnonymousUser | None,
    note: str,
    acknowledged: bool,
) -> int:
    items = list(items)
    now = timezone.now()
    user_id = by.pk if by is not None and by.is_authenticated else None
    with transaction.atomic():
        ExceptionAck.objects.bulk_create(
            [
                ExceptionAck(
                    shipment_id=item.shipment_id,
                    kind=item.kind,
                    acknowledged=acknowledged,
                    note=note,
                    by_id=user_id,
                    at=now,
                )
                for item in items
            ]
        )
        # The queue reflects it at once, without waiting for the next refresh.
        changes: dict[str, object] = {"acknowledged_at": now} if acknowledged else {}
        if note:
            changes["note"] = note
        if changes:
            ExceptionItem.objects.filter(pk__in=[item.pk for item in items]).update(**changes)
    return len(items)
