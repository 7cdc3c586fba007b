"""The dashboard's events per day, recounted for the days that changed.

The statistics rebuild recounts every day of the window. The scheduled refresh between two
rebuilds recounts only the days that recent runs' events fall on (new events, and the ones a
retraction withdrew) and drops the day that left the window: its cost follows what the feeds
sent since the last refresh, not the events stored (docs/scaling.md, the 50M notes).

The window starts at midnight UTC, so a recount of a day is the same whatever the time of day,
and the days nothing touched keep counts that a full recount would give again. Events that no
run brought (a retention import, the demo's history) and a parcel's destination set after its
events were counted are in the figures after the next statistics rebuild (hourly).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db.backends.utils import CursorWrapper

# A run's last batch commits before its `finished_at` is set; a run that finished this long
# before the previous refresh began was visible to it. The margin covers clocks (the refresh
# takes its time in Python, the run in PostgreSQL) and the gap between the two statements.
RUN_MARGIN = timedelta(minutes=5)

_COUNT_SQL = """
INSERT INTO operations_dailyvolume (day, warehouse_id, destination_country, events)
SELECT (e.occurred_at AT TIME ZONE 'UTC')::date, e.warehouse_id,
       coalesce(s.destination_country, ''), count(*)
FROM shipments_trackingevent e
LEFT JOIN shipments_shipment s ON s.id = e.shipment_id
WHERE e.occurred_at >= %(lo)s {days}
GROUP BY 1, 2, 3
"""

# The days' month alone (the bounds prune the other partitions), then the days themselves.
_DAYS = """
  AND e.occurred_at < %(hi)s AND (e.occurred_at AT TIME ZONE 'UTC')::date = ANY(%(days)s)"""

# Runs not finished, or finished after the previous refresh began (less the margin).
_RUNS_SQL = """
SELECT id FROM warehouses_feedrun
WHERE finished_at IS NULL OR finished_at >= %(since)s
"""

_TOUCHED_DAYS_SQL = """
SELECT (e.occurred_at AT TIME ZONE 'UTC')::date FROM shipments_trackingevent e
WHERE e.run_id = ANY(%(runs)s) AND e.occurred_at >= %(lo)s
UNION
SELECT (r.occurred_at AT TIME ZONE 'UTC')::date FROM warehouses_retractedevent r
WHERE r.run_id = ANY(%(runs)s) AND r.occurred_at >= %(lo)s
"""


def window_start(*, start: datetime) -> datetime:
    """Midnight UTC of the window's first day."""
    return datetime.combine(start.astimezone(UTC).date(), time(), tzinfo=UTC)


def volume_recount_all(cursor: CursorWrapper, *, start: datetime) -> None:
    """Every day of the window, from scratch."""
    cursor.execute("DELETE FROM operations_dailyvolume")
    cursor.execute(_COUNT_SQL.format(days=""), {"lo": window_start(start=start)})


def volume_recount_changed(
    cursor: CursorWrapper, *, start: datetime, since: datetime
) -> list[date]:
    """Recount the days events of runs since `since` fall on; returns those days.

    1. Runs unfinished or finished since `since` (less RUN_MARGIN).
    2. The days their events and their retractions fall on, inside the window.
    3. Per calendar month (a month is one events partition): delete and recount those days.
    4. Drop the days before the window.
    """
    lo = window_start(start=start)
    cursor.execute(_RUNS_SQL, {"since": since - RUN_MARGIN})
    runs = [run_id for (run_id,) in cursor.fetchall()]
    days: list[date] = []
    if runs:
        cursor.execute(_TOUCHED_DAYS_SQL, {"runs": runs, "lo": lo})
        days = sorted(day for (day,) in cursor.fetchall())
    months: dict[tuple[int, int], list[date]] = defaultdict(list)
    for day in days:
        months[(day.year, day.month)].append(day)
    for month_days in months.values():
        cursor.execute(
            "DELETE FROM operations_dailyvolume WHERE day = ANY(%(days)s)", {"days": month_days}
        )
        first = datetime.combine(month_days[0], time(), tzinfo=UTC)
        last = datetime.combine(month_days[-1], time(), tzinfo=UTC)
        cursor.execute(
            _COUNT_SQL.format(days=_DAYS),
            {"lo": first, "hi": last + timedelta(days=1), "days": month_days},
        )
    cursor.execute("DELETE FROM operations_dailyvolume WHERE day < %(lo)s", {"lo": lo.date()})
    return days
