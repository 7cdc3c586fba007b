"""Records -> events in the hub's vocabulary: codes mapped, times in UTC, places and units clean.

Time zones are resolved in a fixed order and the way they were known is kept: an offset in the
value (explicit) -> a zone in the record (separate_field) -> the zone of the place the event
names, from the gazetteer (locode, city, airport, coordinates, country: warehouses/places.py) ->
the warehouse's zone, only for an event at that warehouse (warehouse) -> the feed's default zone,
only for a feed declared single-place by having one (feed_default). A named place whose zone is
unknown is rejected, and so is a local time with none of these: a time is never guessed, never
taken from a neighbour, never silently taken as UTC. An event keeps only the place its source
gave: nothing is filled in from the warehouse (docs/places.md).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shipments.identifiers import (
    tracking_number_clean,
    tracking_number_problem,
    tracking_number_valid,
)
from shipments.recording import EventInput
from shipments.statuses import EVENT_CODES
from warehouses.locations import LOCODES
from warehouses.parsers.base import Record, RecordError
from warehouses.places import PlaceRef, is_airport_code, is_locode, place_zone, zone_countries

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
_UNITS = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "lb": Decimal("0.45359237"),
    "lbs": Decimal("0.45359237"),
}
TRANSPORT_MODES = {"air", "rail", "road", "sea", "postal", "multimodal", ""}
_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What the normalizer needs to know about the feed and its warehouse."""

    code_mapping: dict[str, str] = field(default_factory=dict)
    unknown_code_policy: str = "reject"
    warehouse_timezone: str = ""
    # Set only on a feed declared single-place: every event in it happens in this zone.
    feed_timezone: str = ""
    # Who the warehouse is, to tell an event at the warehouse from one elsewhere. A carrier or
    # customs "warehouse" is a sender, not a site: place-less events in its feeds are nowhere.
    warehouse_name: str = ""
    warehouse_city: str = ""
    warehouse_locode: str = ""
    warehouse_is_site: bool = True
    identifier_mapping: dict[str, str] = field(default_factory=dict)
    # (partner code, suggestion, note, untracked) -> what `_code` made of it: a feed uses a
    # handful of codes over millions of records, so each is resolved once per run.
    code_memo: dict[tuple[str, str, str, bool], tuple[str, str] | _FieldError] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Tracking number as given -> clean and valid (a parcel's events repeat it); only valid
    # ones are kept, so every reject still reports its own reason.
    tracking_memo: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The place as given -> (zone, tz_source) or why there is none: a feed names a few places
    # over millions of records, so each is looked up once per run.
    place_memo: dict[tuple[object, ...], tuple[str, str] | _FieldError] = field(
        default_factory=dict, compare=False, repr=False
    )


# A bound on per-run memos, so a file of endlessly different bad values cannot grow them.
_MEMO_LIMIT = 4096
# Tracking numbers: a batch's parcels (tens of thousands); emptied when full.
_TRACKING_MEMO_LIMIT = 65_536


def _reject(record: Record, field_name: str, reason: str, unknown_code: str = "") -> RecordError:
    return RecordError(
        line=record.line,
        raw=record.raw,
        field=field_name,
        reason=reason,
        unknown_code=unknown_code,
    )


def _zone(name: str) -> timezone | ZoneInfo:
    zone = _zone_or_reason(name)
    if isinstance(zone, str):
        raise ValueError(zone)
    return zone


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
    """(aware datetime, tz_source) or _FieldError with a reason naming the field.

    `location_code` is the record's, already cleaned, when the caller has it.
    """
    value = record.event_time
    if value is None or value == "":
        raise _FieldError("event_time", "missing event time")
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = parse_time_text(value)
        except ValueError as exc:
            raise _FieldError("event_time", str(exc)) from exc
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
        raise _FieldError("time_zone", zone)
    try:
        return _localize(moment, zone, name), source
    except ValueError as exc:
        raise _FieldError("event_time", str(exc)) from exc


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
        except _FieldError as exc:
            known = exc.with_traceback(None)
        if len(ctx.place_memo) < _MEMO_LIMIT:
            ctx.place_memo[key] = known
    if isinstance(known, _FieldError):
        if known.field == "event_time":
            # The one reason that quotes the value: said for this record's value.
            raise _FieldError("event_time", _NO_ZONE.format(value=value))
        raise _FieldError(known.field, known.reason)
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
        raise _FieldError("time_zone", f"zone unknown for {place.label()}")
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
        raise _FieldError("time_zone", f"zone unknown for {place.label()}")
    if ctx.warehouse_timezone and ctx.warehouse_is_site:
        return ctx.warehouse_timezone, "warehouse"
    if ctx.feed_timezone:
        return ctx.feed_timezone, "feed_default"
    raise _FieldError("event_time", "no time zone")


class _FieldError(Exception):
    def __init__(self, field_name: str, reason: str, unknown_code: str = "") -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason
        # Set when the record is rejected because this partner code has no event code.
        self.unknown_code = unknown_code


def _code(record: Record, ctx: FeedContext) -> tuple[str, str]:
    """(event code, description addition): the one rule of docs/mapping.md, for every format."""
    key = (record.partner_code, record.event_code, record.code_note, record.code_untracked)
    known = ctx.code_memo.get(key)
    if known is None:
        try:
            known = _code_resolve(record, ctx)
        except _FieldError as exc:
            # Kept without its traceback, which would hold the first bad record's frame.
            known = exc.with_traceback(None)
        if len(ctx.code_memo) < _MEMO_LIMIT:
            ctx.code_memo[key] = known
    if isinstance(known, _FieldError):
        # The field is the record's own (an EPCIS pointer names the event's index).
        raise _FieldError(record.code_field or known.field, known.reason, known.unknown_code)
    return known


def _mapped(mapping: dict[str, str], partner: str) -> str | None:
    """The feed's event code for a partner code: exact spelling first, then any case."""
    found = mapping.get(partner) or mapping.get(partner.upper())
    if found is None:
        lowered = partner.lower()
        found = next((v for k, v in mapping.items() if k.lower() == lowered), None)
    return found


def _code_resolve(record: Record, ctx: FeedContext) -> tuple[str, str]:
    """1. the feed's code mapping; 2. the format's standard table (the parser's suggestion,
    or for CSV/JSON a code of the hub's own vocabulary); 3. the feed's unknown-code policy."""
    partner = record.partner_code.strip()
    if partner and ctx.code_mapping:
        mapped = _mapped(ctx.code_mapping, partner)
        if mapped:
            if mapped not in EVENT_CODES:
                raise _FieldError(
                    "event_code",
                    f"the feed maps {partner!r} to {mapped!r}, which is not an event code",
                )
            return mapped, ""
    if record.event_code:
        if record.event_code not in EVENT_CODES:
            raise _FieldError("event_code", f"unknown event code {record.event_code!r}")
        return record.event_code, ""
    if not partner:
        raise _FieldError("event_code", "missing event code")
    if not record.code_note and partner.lower() in EVENT_CODES:
        return partner.lower(), ""
    note = record.code_note or f"unknown partner code {partner!r}"
    how = f"map {partner!r} to an event code in the feed's code mapping"
    if record.code_untracked:
        # A code the standard knows as no tracking event: never an exception by policy.
        raise _FieldError("event_code", f"{note}; to record it, {how}", partner)
    if ctx.unknown_code_policy == "exception":
        return "exception", f"unmapped partner code {partner!r}"
    raise _FieldError(
        "event_code",
        f"{note}: {how}, or set the feed's unknown-code policy to exception",
        partner,
    )


def _weight(record: Record) -> Decimal | None:
    if record.weight_kg is not None:
        return record.weight_kg
    if "weight" not in record.extra:
        return None
    raw = str(record.extra.get("weight", "")).strip().lower()
    if not raw:
        return None
    match = re.fullmatch(r"([0-9]+(?:[.,][0-9]+)?)\s*([a-z]*)", raw)
    if not match:
        raise _FieldError("weight_kg", f"unparseable weight {raw!r}")
    number, unit = match.groups()
    factor = _UNITS.get(unit or "kg")
    if factor is None:
        raise _FieldError("weight_kg", f"unknown weight unit {unit!r}")
    try:
        return (Decimal(number.replace(",", ".")) * factor).quantize(Decimal("0.001"))
    except InvalidOperation as exc:
        raise _FieldError("weight_kg", f"unparseable weight {raw!r}") from exc


def _check_length(name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise _FieldError(name, f"{name} is {len(value)} characters, the limit is {limit}")
    return value


def _event(record: Record, ctx: FeedContext) -> EventInput:
    # Runs once per record on the hot path: the checks are written inline, in the order their
    # reasons are reported (the first problem of a record is the one the operator sees).
    given = record.tracking_number
    tracking = ctx.tracking_memo.get(given)
    valid = tracking is not None
    if tracking is None:
        tracking = given.strip()
        if ctx.identifier_mapping:
            tracking = ctx.identifier_mapping.get(tracking, tracking)
        tracking = tracking_number_clean(tracking)
        if tracking and tracking_number_valid(tracking):
            valid = True
            memo = ctx.tracking_memo
            if len(memo) >= _TRACKING_MEMO_LIMIT:
                memo.clear()
            memo[given] = tracking
    unit = record.unit_id.strip()
    if not tracking and not unit:
        raise _FieldError("tracking_number", "missing tracking number (and no unit_id)")
    if tracking and not valid:
        raise _FieldError("tracking_number", tracking_number_problem(tracking))
    if len(unit) > 100:
        _check_length("unit_id", unit, 100)
    code, note = _code(record, ctx)
    location_code = record.location_code.strip().upper()
    if " " in location_code:
        location_code = location_code.replace(" ", "")
    if len(location_code) > 10:
        _check_length("location_code", location_code, 10)
    country = record.country.strip().upper()
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise _FieldError("country", f"country {country!r} is not an ISO 3166 alpha-2 code")
    occurred_at, tz_source = resolve_time(record, ctx, location_code)
    location_name = record.location_name.strip()
    if not country and location_code:
        # A UN/LOCODE names its country: that is the source's, not an invention.
        known = LOCODES.get(location_code)
        if known is not None:
            country = known.country
        elif len(location_code) == 5 and location_code[:2].isalpha():
            country = location_code[:2]
    mode = record.transport_mode.strip().lower()
    if mode not in TRANSPORT_MODES:
        raise _FieldError("transport_mode", f"unknown transport mode {mode!r}")
    description = record.description.strip()
    if note:
        description = f"{description} ({note})" if description else note
    offset = occurred_at.utcoffset() or _ZERO
    if record.extra:
        extra: dict[str, Any] = {k: v for k, v in record.extra.items() if k != "weight"}
    else:
        extra = {}
    if record.partner_code:
        extra["partner_code"] = record.partner_code
    occurred_utc = occurred_at.astimezone(UTC)
    order_number = record.order_number.strip()
    carrier = record.carrier.strip()
    if len(location_name) > 200 or len(order_number) > 64 or len(carrier) > 64:
        _check_length("location_name", location_name, 200)
        _check_length("order_number", order_number, 64)
        _check_length("carrier", carrier, 64)
    return EventInput(
        line=record.line,
        code=code,
        occurred_at=occurred_utc,
        utc_offset_minutes=offset // _MINUTE,
        tz_source=tz_source,
        tracking_number=tracking,
        unit_number=unit if not tracking else "",
        unit_kind=record.unit_kind.strip().lower(),
        location_name=location_name,
        location_code=location_code,
        country=country,
        description=description,
        order_number=order_number,
        carrier=carrier,
        transport_mode=mode,
        weight_kg=_weight(record),
        raw=record.raw,
        extra=extra,
    )


def normalize_event(record: Record, ctx: FeedContext) -> EventInput | RecordError:
    """One record of kind "event" -> EventInput, or the precise reason it cannot be one."""
    try:
        return _event(record, ctx)
    except _FieldError as exc:
        return _reject(record, exc.field, exc.reason, exc.unknown_code)
