"""Reads of the operations dashboard: a fixed number of queries over the pre-aggregated tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Count, Q, QuerySet, Subquery

from config.replica import read_alias
from operations.models import DashboardRefresh, ExceptionItem
from shipments.statuses import STAGE_ORDER, Status

VOLUME_DAYS = 30
TREND_WEEKS = 12
EXCEPTIONS_SHOWN = 50


@dataclass(frozen=True)
class FeedHealthRow:
    feed_id: int
    code: str
    name: str
    warehouse: str
    active: bool
    last_run_id: int | None
    last_run_at: datetime | None
    last_run_status: str
    last_success_at: datetime | None
    every_seconds: int | None
    runs_7d: int
    records_7d: int
    rejected_7d: int
    # Live: runs of the last 7 days that ended `failed`, and the latest one's id and error.
    failed_7d: int
    last_failure_id: int | None
    last_failure_error: str
    lag: timedelta | None
    state: str  # ok | quiet | failing | idle

    @property
    def reject_rate(self) -> float | None:
        return self.rejected_7d / self.records_7d if self.records_7d else None


@dataclass(frozen=True)
class Percentiles:
    samples: int
    p50: float
    p90: float


@dataclass
class Lane:
    origin: str
    destination: str
    mode: str
    total: Percentiles | None = None
    stages: dict[str, Percentiles] = field(default_factory=dict)


@dataclass
class Dashboard:
    now: datetime
    refreshed_at: datetime | None
    refresh_seconds: float | None
    # When the lane and dwell statistics were last rebuilt (they are rebuilt less often).
    stats_at: datetime | None
    feeds: list[FeedHealthRow]
    events_per_day: list[tuple[date, int]]
    shipments_per_day: list[tuple[date, int]]
    events_by_warehouse: list[tuple[str, int]]
    events_by_country: list[tuple[str, int]]
    status_totals: list[tuple[str, int]]
    status_by_warehouse: dict[str, dict[str, int]]
    status_by_country: dict[str, dict[str, int]]
    exception_counts: dict[str, int]
    exceptions: list[ExceptionItem]
    lanes: list[Lane]
    dwell: list[tuple[str, Percentiles]]
    transit_trend: list[tuple[date, Percentiles]]
    dwell_trend: list[tuple[date, Percentiles]]
    statuses: list[str] = field(default_factory=lambda: [str(s) for s in Status.values])
    stages: list[str] = field(default_factory=lambda: [str(s) for s in STAGE_ORDER])


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _feed_state(
    *, active: bool, status: str, last_success: datetime | None, every: int | None, now: datetime
) -> tuple[timedelta | None, str]:
    lag = now - last_success if last_success else None
    if not active:
        return lag, "idle"
    quiet_after = (
        timedelta(seconds=every * settings.OPS_FEED_QUIET_FACTOR)
        if every
        else timedelta(hours=settings.OPS_FEED_QUIET_HOURS)
    )
    if lag is None or lag > quiet_after:
        return lag, "quiet"
    if status == "failed":
        return lag, "failing"
    return lag, "ok"


def feed_health(*, now: datetime) -> list[FeedHealthRow]:
    # From Feed, so a feed added since the last refresh is listed (as never having run).
    rows = _rows(
        """
        SELECT f.id, f.code, f.name, w.code, f.active, h.last_run_id, h.last_run_at,
               coalesce(h.last_run_status, ''), h.last_success_at, h.every_seconds,
               coalesce(h.runs_7d, 0), coalesce(h.records_7d, 0), coalesce(h.rejected_7d, 0),
               coalesce(fail.n, 0), fail.last_id, coalesce(fail.last_error, '')
        FROM warehouses_feed f
        JOIN warehouses_warehouse w ON w.id = f.warehouse_id
        LEFT JOIN operations_feedhealth h ON h.feed_id = f.id
        -- Failed runs are few and indexed (feedrun_feed_failed): read live, so a run that
        -- failed a minute ago shows before the next refresh.
        LEFT JOIN LATERAL (
            SELECT count(*) AS n,
                   (array_agg(r.id ORDER BY r.created_at DESC, r.id DESC))[1] AS last_id,
                   (array_agg(left(r.error, 300) ORDER BY r.created_at DESC, r.id DESC))[1]
                       AS last_error
            FROM warehouses_feedrun r
            WHERE r.feed_id = f.id AND r.status = 'failed'
              AND r.created_at >= %(since)s
        ) fail ON true
        ORDER BY f.active DESC, f.code
        """,
        {"since": now - timedelta(days=7)},
    )
    result = []
    for row in rows:
        lag, state = _feed_state(
            active=row[4], status=row[7], last_success=row[8], every=row[9], now=now
        )
        result.append(FeedHealthRow(*row, lag=lag, state=state))  # type: ignore[misc]
    return result


def _percentiles(samples: int, p50: float, p90: float) -> Percentiles:
    return Percentiles(samples=samples, p50=round(p50, 1), p90=round(p90, 1))


StatusCounts = dict[str, dict[str, int]]


def status_snapshot() -> tuple[list[tuple[str, int]], StatusCounts, StatusCounts]:
    """Current shipments per status: in all, by warehouse of the latest event, by destination
    country (one query)."""
    snapshot = _rows(
        """
        SELECT GROUPING(w.code), GROUPING(s.destination_country), s.status,
               coalesce(w.code, '(none)'), s.destination_country, sum(s.shipments)
        FROM operations_statussnapshot s LEFT JOIN warehouses_warehouse w ON w.id = s.warehouse_id
        GROUP BY GROUPING SETS ((s.status), (w.code, s.status), (s.destination_country, s.status))
        """,
        {},
    )
    status_totals = [(r[2], int(r[5])) for r in snapshot if r[0] == 1 and r[1] == 1]
    status_totals.sort(key=lambda x: -x[1])
    status_by_warehouse: StatusCounts = {}
    status_by_country: StatusCounts = {}
    for r in snapshot:
        if r[0] == 0:
            status_by_warehouse.setdefault(r[3], {})[r[2]] = int(r[5])
        elif r[1] == 0:
            status_by_country.setdefault(r[4] or "??", {})[r[2]] = int(r[5])
    return status_totals, status_by_warehouse, status_by_country


def lane_stats() -> list[Lane]:
    """The lane table: per lane, the whole transit and each stage, busiest lane first."""
    lane_rows = _rows(
        """
        SELECT origin_country, destination_country, transport_mode, stage, samples,
               p50_hours, p90_hours
        FROM operations_lanestagestat
        WHERE week IS NULL AND origin_country <> '*'
        ORDER BY origin_country, destination_country, transport_mode
        """,
        {},
    )
    lanes: dict[tuple[str, str, str], Lane] = {}
    for o, d, m, stage, n, p50, p90 in lane_rows:
        lane = lanes.setdefault((o, d, m), Lane(o, d, m))
        if stage:
            lane.stages[stage] = _percentiles(n, p50, p90)
        else:
            lane.total = _percentiles(n, p50, p90)
    return sorted(lanes.values(), key=lambda lane: -(lane.total.samples if lane.total else 0))


Dwell = list[tuple[str, Percentiles]]


def dwell_stats(*, trend_since: date) -> tuple[Dwell, list[tuple[date, Percentiles]]]:
    """The warehouse dwell table (per warehouse, "(all)" first) and the weekly dwell trend of
    all warehouses since `trend_since` (one query)."""
    dwell_rows = _rows(
        """
        SELECT d.week, coalesce(w.code, '(all)'), d.warehouse_id IS NULL, d.samples,
               d.p50_hours, d.p90_hours
        FROM operations_warehousedwellstat d
        LEFT JOIN warehouses_warehouse w ON w.id = d.warehouse_id
        WHERE d.week IS NULL OR (d.warehouse_id IS NULL AND d.week >= %(since)s)
        ORDER BY d.week NULLS FIRST, w.code NULLS FIRST
        """,
        {"since": trend_since},
    )
    dwell = [(r[1], _percentiles(r[3], r[4], r[5])) for r in dwell_rows if r[0] is None]
    dwell_trend = [(r[0], _percentiles(r[3], r[4], r[5])) for r in dwell_rows if r[0] and r[2]]
    return dwell, dwell_trend


def open_exceptions() -> QuerySet[ExceptionItem]:
    """The exceptions queue: the items no operator has acknowledged."""
    return ExceptionItem.objects.filter(acknowledged_at__isnull=True)


def dashboard_get(*, now: datetime) -> Dashboard:
    """Everything the dashboard shows, in a constant number of queries (asserted in tests)."""
    last_stats = DashboardRefresh.objects.filter(stats=True).order_by("-finished_at")
    latest = (
        DashboardRefresh.objects.annotate(stats_at=Subquery(last_stats.values("finished_at")[:1]))
        .order_by("-finished_at")
        .first()
    )
    since = now.date() - timedelta(days=VOLUME_DAYS - 1)
    trend_since = now.date() - timedelta(weeks=TREND_WEEKS)

    volume = _rows(
        """
        SELECT GROUPING(v.day), GROUPING(w.code), v.day, coalesce(w.code, '(none)'),
               v.destination_country, sum(v.events)
        FROM operations_dailyvolume v LEFT JOIN warehouses_warehouse w ON w.id = v.warehouse_id
        WHERE v.day >= %(since)s
        GROUP BY GROUPING SETS ((v.day), (w.code), (v.destination_country))
        """,
        {"since": since},
    )
    per_day = {r[2]: int(r[5]) for r in volume if r[0] == 0}
    by_warehouse = sorted(
        ((r[3], int(r[5])) for r in volume if r[0] == 1 and r[1] == 0), key=lambda x: -x[1]
    )
    by_country = sorted(
        ((r[4] or "??", int(r[5])) for r in volume if r[0] == 1 and r[1] == 1),
        key=lambda x: -x[1],
    )
    new_shipments = dict(
        _rows(
            "SELECT day, sum(shipments) FROM operations_dailyshipments WHERE day >= %(since)s "
            "GROUP BY day",
            {"since": since},
        )
    )
    days = [since + timedelta(days=i) for i in range(VOLUME_DAYS)]

    status_totals, status_by_warehouse, status_by_country = status_snapshot()

    open_items = open_exceptions()
    counts = open_items.aggregate(
        **{kind: Count("pk", filter=Q(kind=kind)) for kind in ExceptionItem.Kind.values}
    )
    exceptions = list(
        open_items.select_related("shipment").order_by("since", "pk")[:EXCEPTIONS_SHOWN]
    )

    dwell, dwell_trend = dwell_stats(trend_since=trend_since)
    transit_trend = [
        (r[0], _percentiles(r[1], r[2], r[3]))
        for r in _rows(
            """
            SELECT week, samples, p50_hours, p90_hours FROM operations_lanestagestat
            WHERE origin_country = '*' AND stage = '' AND week >= %(since)s ORDER BY week
            """,
            {"since": trend_since},
        )
    ]
    present = {status for status, _ in status_totals}
    return Dashboard(
        statuses=[str(s) for s in Status.values if s in present],
        now=now,
        refreshed_at=latest.finished_at if latest else None,
        refresh_seconds=latest.seconds if latest else None,
        stats_at=latest.stats_at if latest else None,
        feeds=feed_health(now=now),
        events_per_day=[(d, per_day.get(d, 0)) for d in days],
        shipments_per_day=[(d, int(new_shipments.get(d, 0))) for d in days],
        events_by_warehouse=by_warehouse,
        events_by_country=by_country,
        status_totals=status_totals,
        status_by_warehouse=status_by_warehouse,
        status_by_country=status_by_country,
        exception_counts={k: int(v) for k, v in counts.items()},
        exceptions=exceptions,
        lanes=lane_stats(),
        dwell=dwell,
        transit_trend=transit_trend,
        dwell_trend=dwell_trend,
    )
