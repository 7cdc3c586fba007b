"""The unified timeline of one shipment: its own events plus its transport units' events.

One query reads both (the unit rule is the recorder's `eff` CTE: an event on a unit belongs to a
shipment inside it at that moment, shipments.membership.inside_unit). The merge of the same
physical event reported by two sources happens in Python over that one result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connections

from config.replica import read_alias
from shipments.event_bounds import own_events_within
from shipments.membership import inside_unit


def _iso_sql(timestamp: str) -> str:
    """SQL for a `timestamp` (without zone) as Python's isoformat() writes it: microseconds
    only when there are any."""
    return (
        f"to_char({timestamp}, CASE WHEN mod(extract(microseconds FROM {timestamp}), 1000000) = 0"
        """ THEN 'YYYY-MM-DD"T"HH24:MI:SS' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US' END)"""
    )


# An event's time in UTC as the API writes times ("...Z"), and its local wall-clock time with
# its offset ("...+08:00"), formatted by PostgreSQL: formatting them in Python cost more than
# the rest of building a timeline entry. (tests/shipments/test_timeline.py holds them to
# Python's own formatting.)
_UTC_TEXT = _iso_sql("(e.occurred_at AT TIME ZONE 'UTC')") + " || 'Z'"
_LOCAL_TEXT = (
    _iso_sql("(e.occurred_at AT TIME ZONE 'UTC' + make_interval(mins => e.utc_offset_minutes))")
    + " || CASE WHEN e.utc_offset_minutes < 0 THEN '-' ELSE '+' END"
    " || to_char(make_interval(mins => abs(e.utc_offset_minutes)), 'HH24:MI')"
)
_EVENT_COLUMNS = (
    "e.id, e.code, e.status, e.stage, e.occurred_at, e.utc_offset_minutes, e.location_name,"
    f" e.location_code, e.country, e.description, {_UTC_TEXT} AS utc_text,"
    f" {_LOCAL_TEXT} AS local_text"
)

# The rows of the timeline of the enclosing query's shipment `s`. Its own events are read within
# its bounds (shipments.event_bounds), so only the months that hold them; a unit's events
# within the membership's window, which prunes too.
_TIMELINE_ROWS = f"""
SELECT {_EVENT_COLUMNS}, f.code AS feed, w.code AS warehouse,
       w.name AS warehouse_name, NULL::text AS unit
FROM shipments_trackingevent e
LEFT JOIN warehouses_feed f ON f.id = e.feed_id
LEFT JOIN warehouses_warehouse w ON w.id = e.warehouse_id
WHERE e.shipment_id = s.id AND {own_events_within("s", "e.occurred_at")}
UNION ALL
SELECT {_EVENT_COLUMNS}, f.code, w.code, w.name, u.number
FROM shipments_unitmembership m
JOIN shipments_transportunit u ON u.id = m.unit_id
JOIN shipments_trackingevent e
  ON e.unit_id = m.unit_id AND {inside_unit("m", "e.occurred_at")}
LEFT JOIN warehouses_feed f ON f.id = e.feed_id
LEFT JOIN warehouses_warehouse w ON w.id = e.warehouse_id
WHERE m.shipment_id = s.id
"""

_TIMELINE_SQL = (
    f"SELECT t.* FROM shipments_shipment s CROSS JOIN LATERAL ({_TIMELINE_ROWS}) AS t"
    " WHERE s.id = %(id)s ORDER BY 5, 1"
)

# The same rows as one JSON array of arrays (oldest first), as text, for embedding as a column of
# a query that already reads the shipment (`s`): the API's detail is then one round trip. Text,
# so that orjson decodes it (timeline_rows_from_json), not the driver's standard-library loader.
TIMELINE_JSON = (
    "(SELECT coalesce(json_agg(json_build_array(t.id, t.code, t.status, t.stage, t.occurred_at,"
    " t.utc_offset_minutes, t.location_name, t.location_code, t.country, t.description,"
    " t.utc_text, t.local_text, t.feed, t.warehouse, t.warehouse_name, t.unit)"
    " ORDER BY t.occurred_at, t.id), '[]')::text"
    f" FROM ({_TIMELINE_ROWS}) AS t)"
)


@dataclass(slots=True)
class Source:
    event_id: int
    feed: str | None
    warehouse: str | None
    warehouse_name: str | None
    unit: str | None


@dataclass(slots=True)
class TimelineEntry:
    id: int
    code: str
    status: str
    stage: str
    occurred_at: datetime
    utc_offset_minutes: int
    location_name: str
    location_code: str
    country: str
    description: str
    occurred_at_text: str  # ISO 8601 in UTC with "Z", as the API writes times
    local_time: str  # wall-clock time where it happened, with its offset (ISO 8601)
    sources: list[Source] = field(default_factory=list)


def _place(row: TimelineEntry) -> str:
    return row.location_code.upper()


def timeline_merge(rows: list[TimelineEntry], window: timedelta) -> list[TimelineEntry]:
    """Fold reports of the same physical event: same code, same location code (or both empty),
    within `window` of the first report. Rows arrive sorted by time, so only recent groups can
    still match."""
    merged: list[TimelineEntry] = []
    for row in rows:
        same = None
        for group in reversed(merged):
            if row.occurred_at - group.occurred_at > window:
                break
            if group.code == row.code and _place(group) == _place(row):
                same = group
                break
        if same is None:
            merged.append(row)
            continue
        same.sources.extend(row.sources)
        # Prefer the report that knows more about the place.
        same.location_name = same.location_name or row.location_name
        same.description = same.description or row.description
    return merged


def timeline_get(*, shipment_id: int) -> list[TimelineEntry]:
    """The merged timeline, oldest first, in one query."""
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(_TIMELINE_SQL, {"id": shipment_id})
        raw = cursor.fetchall()
    return timeline_from_rows(raw)


def timeline_rows_from_json(text: str) -> list[list[Any]]:
    """The rows of a TIMELINE_JSON column, shaped as timeline_get's query returns them."""
    rows: list[list[Any]] = orjson.loads(text)
    for r in rows:
        r[4] = datetime.fromisoformat(r[4])  # JSON carries times as ISO strings
    return rows


def timeline_from_rows(rows: Sequence[Sequence[Any]]) -> list[TimelineEntry]:
    """The merged timeline, oldest first, from rows of _TIMELINE_ROWS' shape."""
    window = timedelta(minutes=settings.TIMELINE_MERGE_WINDOW_MINUTES)
    return timeline_merge([_entry(r) for r in rows], window)


def _entry(r: Sequence[Any]) -> TimelineEntry:
    # Positional: this runs for every event of every detail request.
    return TimelineEntry(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        r[10],
        r[11],
        [Source(r[0], r[12], r[13], r[14], r[15])],
    )


MILESTONES = (
    "first_mile_completed",
    "export_cleared",
    "departed_origin_country",
    "arrived_destination_country",
    "import_cleared",
    "out_for_delivery",
    "delivered",
)

_AFTER_FIRST_MILE = {"export_customs", "line_haul", "import_customs", "last_mile"}
_LEAVING = {"departed", "border_crossed", "in_transit", "loaded"}


def milestones(
    entries: list[TimelineEntry], *, origin_country: str, destination_country: str
) -> dict[str, TimelineEntry | None]:
    """The entry that first reached each milestone (None until one does)."""
    found: dict[str, TimelineEntry | None] = dict.fromkeys(MILESTONES)

    def first(name: str, entry: TimelineEntry) -> None:
        if found[name] is None:
            found[name] = entry

    for e in entries:
        if e.code == "warehouse_dispatched" or e.stage in _AFTER_FIRST_MILE:
            first("first_mile_completed", e)
        if e.code == "customs_export_cleared":
            first("export_cleared", e)
        if (
            e.code in _LEAVING
            and e.stage == "line_haul"
            and (not origin_country or e.country in ("", origin_country))
        ):
            first("departed_origin_country", e)
        arrived_by_country = bool(destination_country) and e.country == destination_country
        if arrived_by_country or (not destination_country and e.stage == "import_customs"):
            first("arrived_destination_country", e)
        if e.code == "customs_import_cleared":
            first("import_cleared", e)
        if e.code == "out_for_delivery":
            first("out_for_delivery", e)
        if e.code == "delivered":
            first("delivered", e)
    return found
