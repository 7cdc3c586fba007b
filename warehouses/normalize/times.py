"""A record's time -> an aware instant, and how its zone was known (the event's tz_source).

Time zones are resolved in a fixed order and the way they were known is kept: an offset in the
value (explicit) -> a zone in the record (separate_field) -> the zone of the place the event
names, from the gazetteer (locode, city, airport, coordinates, country: normalize/places.py) ->
the warehouse's zone, only for an event at that warehouse (warehouse) -> the feed's default zone,
only for a feed declared single-place by having one (feed_default). A named place whose zone is
unknown is rejected, and so is a local time with none of these: a time is never guessed, never
taken from a neighbour, never silently taken as UTC (docs/places.md).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warehouses.normalize.context import MEMO_LIMIT, FeedContext
from warehouses.normalize.places import (
    PlaceRef,
    is_airport_code,
    is_locode,
    place_zone,
    zone_countries,
)
from warehouses.parsers.base import Record, RecordRejected

_NAIVE_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y%m%d%H%M%S",
    "%Y%m%d%H%M",
)
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")


@functools.lru_cache(maxsize=512)
def _zone_or_reason(name: str) -> timezone | ZoneInfo | str:
    """The zone a name stands for, or why it stands for none (cached: a file repeats a few)."""
    match = _OFFSET.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=18):
            return f"offset {name!r} is out of range"
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (expected an IANA name or ±HH:MM)"


def parse_time_text(value: str) -> datetime:
    """ISO 8601 (with or without offset, `Z` allowed), a few common export formats, or epoch."""
    text = value.strip()
    if not text:
        raise ValueError("empty")
    # An epoch value is all digits: a fifth character that is not one (the `-` of an ISO date)
    # rules it out without the regular expression.
    if text[4:5].isdigit() and re.fullmatch(r"\d{10}(\.\d+)?|\d{13}", text):
        number = float(text)
        # Epoch values are UTC by definition; 13 digits are milliseconds.
        return datetime.fromtimestamp(number / 1000 if len(text) == 13 else number, tz=UTC)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _NAIVE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(
        f"unparseable time {text!r} (expected ISO 8601, e.g. 2026-05-01T14:30:00+08:00)"
    )


def _localize(naive: datetime, zone: timezone | ZoneInfo, zone_name: str) -> datetime:
    """Attach a zone to a wall-clock time, refusing times that do not exist or exist twice."""
    if isinstance(zone, timezone):
        return naive.replace(tzinfo=zone)
    first = naive.replace(tzinfo=zone, fold=0) if naive.fold else naive.replace(tzinfo=zone)
    second = first.replace(fold=1)
    if first.utcoffset() != second.utcoffset():
        # Inside a DST gap (does not exist) or overlap (happens twice): refuse to guess.
        roundtrip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        kind = "does not exist" if roundtrip != naive else "is ambiguous"
        raise ValueError(f"local time {naive:%Y-%m-%d %H:%M} {kind} in {zone_name} (DST change)")
    return first


def event_place(record: Record, location_code: str | None = None) -> PlaceRef:
    """The place a record names, as its source gave it (the gazetteer's question)."""
    code = location_code
    if code is None:
        code = record.location_code.strip().upper().replace(" ", "")
    locode = code if len(code) == 5 and is_locode(code) else ""
    airport = code if len(code) == 3 and is_airport_code(code) else ""
    return PlaceRef(
        locode=locode,
        airport=airport,
        # A private code (a dock, a GLN) is a name the gazetteer cannot place.
        name=record.location_name.strip() or ("" if locode or airport else code),
        city=record.city.strip(),
        state=record.state.strip(),
        postal_code=record.postal_code.strip(),
        country=record.country.strip().upper(),
        latitude=record.latitude,
        longitude=record.longitude,
    )


def resolve_time(
    record: Record, ctx: FeedContext, location_code: str | None = None
) -> tuple[datetime, str]:
    """(aware datetime, tz_source), or RecordRejected with a reason naming the field.

    `location_code` is the record's, already cleaned, when the caller has it.
    """
    value = record.event_time
    if value is None or value == "":
        raise RecordRejected("missing event time", field="event_time")
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = parse_time_text(value)
        except ValueError as exc:
            raise RecordRejected(str(exc), field="event_time") from exc
    if moment.tzinfo is not None:
        return moment, "explicit"
    # The first zone known decides, closest first: a zone that does not work is an error, never
    # a reason to try the next one.
    if record.time_zone:
        name, source = record.time_zone, "separate_field"
    else:
        name, source = _place_zone_remembered(record, ctx, location_code, value)
    zone = _zone_or_reason(name)
    if isinstance(zone, str):
        raise RecordRejected(zone, field="time_zone")
    try:
        return _localize(moment, zone, name), source
    except ValueError as exc:
        raise RecordRejected(str(exc), field="event_time") from exc


def _place_zone_remembered(
    record: Record, ctx: FeedContext, location_code: str | None, value: object
) -> tuple[str, str]:
    code = location_code
    if code is None:
        code = record.location_code.strip().upper().replace(" ", "")
    key = (
        code,
        record.location_name,
        record.city,
        record.state,
        record.postal_code,
        record.country,
        record.latitude,
        record.longitude,
    )
    known = ctx.place_memo.get(key)
    if known is None:
        try:
            known = _place_zone(event_place(record, code), ctx)
        except RecordRejected as exc:
            known = exc.with_traceback(None)
        if len(ctx.place_memo) < MEMO_LIMIT:
            ctx.place_memo[key] = known
    if isinstance(known, RecordRejected):
        if known.field == "event_time":
            # The one reason that quotes the value: said for this record's value.
            raise RecordRejected(_NO_ZONE.format(value=value), field="event_time")
        raise RecordRejected(known.reason, field=known.field)
    return known


_NO_ZONE = (
    "no time zone for local time {value!s}: no offset in the value, no time_zone in the "
    "record, no place, and neither the warehouse nor the feed has a zone"
)


def _place_zone(place: PlaceRef, ctx: FeedContext) -> tuple[str, str]:
    """(zone name, tz_source) for a local time at `place`, or the reason there is none."""
    if place.locatable():
        found = place_zone(place)
        if found is not None:
            return found
        if place.locode and place.locode == ctx.warehouse_locode and ctx.warehouse_timezone:
            return ctx.warehouse_timezone, "warehouse"
        # A single-place feed's events all happen at its place: one the gazetteer cannot pin
        # down (a country of several zones) is that place, if it lies in the same country.
        country = place.country or place.locode[:2]
        if ctx.feed_timezone and (not country or country in zone_countries(ctx.feed_timezone)):
            return ctx.feed_timezone, "feed_default"
        raise RecordRejected(f"zone unknown for {place.label()}", field="time_zone")
    if place.name:
        # A free-text name the gazetteer cannot place: the warehouse itself, or the one place of
        # a single-place feed; anything else is somewhere unknown.
        folded = place.name.casefold()
        if ctx.warehouse_timezone and any(
            len(own) >= 3 and own.casefold() in folded
            for own in (ctx.warehouse_name, ctx.warehouse_city)
        ):
            return ctx.warehouse_timezone, "warehouse"
        if ctx.feed_timezone:
            return ctx.feed_timezone, "feed_default"
        raise RecordRejected(f"zone unknown for {place.label()}", field="time_zone")
    if ctx.warehouse_timezone and ctx.warehouse_is_site:
        return ctx.warehouse_timezone, "warehouse"
    if ctx.feed_timezone:
        return ctx.feed_timezone, "feed_default"
    raise RecordRejected("no time zone", field="event_time")
