"""Records -> events in the hub's vocabulary: codes mapped, times in UTC, places and units clean.

The code rule is normalize/codes.py, the time and its zone normalize/times.py (the gazetteer:
normalize/places.py). An event keeps only the place its source gave: nothing is filled in from
the warehouse (docs/places.md).
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shipments.identifiers import (
    tracking_number_clean,
    tracking_number_problem,
    tracking_number_valid,
)
from shipments.recording import EventInput
from warehouses.normalize.codes import event_code_of
from warehouses.normalize.context import FeedContext
from warehouses.normalize.places import LOCODES
from warehouses.normalize.times import resolve_time
from warehouses.parsers.base import Record, RecordError, RecordRejected

_UNITS = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "lb": Decimal("0.45359237"),
    "lbs": Decimal("0.45359237"),
}
TRANSPORT_MODES = {"air", "rail", "road", "sea", "postal", "multimodal", ""}
_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)
# Tracking numbers: a batch's parcels (tens of thousands); emptied when full.
_TRACKING_MEMO_LIMIT = 65_536


def rejected(record: Record, exc: RecordRejected) -> RecordError:
    """The reject of `record` for `exc`, located where the raiser says, else at the record."""
    return RecordError(
        line=exc.line or record.line,
        raw=exc.raw or record.raw,
        field=exc.field,
        reason=exc.reason,
        unknown_code=exc.unknown_code,
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
        raise RecordRejected(f"unparseable weight {raw!r}", field="weight_kg")
    number, unit = match.groups()
    factor = _UNITS.get(unit or "kg")
    if factor is None:
        raise RecordRejected(f"unknown weight unit {unit!r}", field="weight_kg")
    try:
        return (Decimal(number.replace(",", ".")) * factor).quantize(Decimal("0.001"))
    except InvalidOperation as exc:
        raise RecordRejected(f"unparseable weight {raw!r}", field="weight_kg") from exc


def _check_length(name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise RecordRejected(f"{name} is {len(value)} characters, the limit is {limit}", field=name)
    return value


def _tracking(given: str, ctx: FeedContext) -> tuple[str, bool]:
    """(clean tracking number, whether it is valid) of a tracking number as given."""
    tracking = ctx.tracking_memo.get(given)
    if tracking is not None:
        return tracking, True
    tracking = given.strip()
    if ctx.identifier_mapping:
        tracking = ctx.identifier_mapping.get(tracking, tracking)
    tracking = tracking_number_clean(tracking)
    if tracking and tracking_number_valid(tracking):
        memo = ctx.tracking_memo
        if len(memo) >= _TRACKING_MEMO_LIMIT:
            memo.clear()
        memo[given] = tracking
        return tracking, True
    return tracking, False


def _place(record: Record) -> tuple[str, str]:
    """(location code, country) of an event, checked; a UN/LOCODE names its country."""
    location_code = record.location_code.strip().upper()
    if " " in location_code:
        location_code = location_code.replace(" ", "")
    if len(location_code) > 10:
        _check_length("location_code", location_code, 10)
    country = record.country.strip().upper()
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise RecordRejected(
            f"country {country!r} is not an ISO 3166 alpha-2 code", field="country"
        )
    if not country and location_code:
        # A UN/LOCODE names its country: that is the source's, not an invention.
        known = LOCODES.get(location_code)
        if known is not None:
            country = known.country
        elif len(location_code) == 5 and location_code[:2].isalpha():
            country = location_code[:2]
    return location_code, country


def _event(record: Record, ctx: FeedContext) -> EventInput:
    # Runs once per record on the hot path: the checks are written inline, in the order their
    # reasons are reported (the first problem of a record is the one the operator sees).
    tracking, valid = _tracking(record.tracking_number, ctx)
    unit = record.unit_id.strip()
    if not tracking and not unit:
        raise RecordRejected("missing tracking number (and no unit_id)", field="tracking_number")
    if tracking and not valid:
        raise RecordRejected(tracking_number_problem(tracking), field="tracking_number")
    if len(unit) > 100:
        _check_length("unit_id", unit, 100)
    code, note = event_code_of(record, ctx)
    location_code, country = _place(record)
    occurred_at, tz_source = resolve_time(record, ctx, location_code)
    location_name = record.location_name.strip()
    mode = record.transport_mode.strip().lower()
    if mode not in TRANSPORT_MODES:
        raise RecordRejected(f"unknown transport mode {mode!r}", field="transport_mode")
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
    except RecordRejected as exc:
        return rejected(record, exc)
