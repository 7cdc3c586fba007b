"""X12 element values: dates, times with their time codes, weights, countries, coordinates,
parties (N1/N3/N4) and references, as the transaction sets read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from warehouses.parsers.base import Record, RecordError
from warehouses.parsers.x12.codes import COUNTRY_ALPHA3, TIME_CODES, WEIGHT_UNITS
from warehouses.parsers.x12.segments import Envelope, Segment, TransactionSet

LIST_LIMIT = 1000  # cap on lines/items/packages kept in extra for one record


def x12_date(value: str) -> date | None:
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def x12_time(value: str) -> time | None:
    """X12 TM: HHMM, HHMMSS, HHMMSSD or HHMMSSDD."""
    if len(value) not in (4, 6, 7, 8) or not value.isdigit():
        return None
    hour, minute = int(value[:2]), int(value[2:4])
    second = int(value[4:6]) if len(value) >= 6 else 0
    fraction = value[6:]
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second, micro)


@dataclass(slots=True)
class When:
    value: datetime
    zone: str = ""  # IANA zone when the time code names a zone
    code: str = ""  # the 623 time code as sent


def when_of(
    segment: Segment, date_index: int, time_index: int | None, code_index: int | None
) -> When | RecordError:
    """Date + time + optional time code of a segment as a datetime (no time: midnight).

    No time code: local time of the place (naive). LT: same, said explicitly. A fixed-offset
    code: aware datetime. A bare zone (CT, ET ...): naive wall clock plus the IANA zone.
    """
    name = segment.tag
    raw_date = segment.el(date_index)
    day = x12_date(raw_date)
    if day is None:
        reason = "date is missing" if not raw_date else f"invalid date {raw_date!r}"
        return RecordError(
            segment.line,
            segment.text,
            f"{reason}, expected CCYYMMDD",
            f"{name}-{date_index:02d}",
        )
    raw_time = segment.el(time_index) if time_index is not None else ""
    clock = x12_time(raw_time) if raw_time else time(0, 0)
    if clock is None and time_index is not None:
        return RecordError(
            segment.line,
            segment.text,
            f"invalid time {raw_time!r}, expected HHMM or HHMMSS",
            f"{name}-{time_index:02d}",
        )
    value = datetime.combine(day, clock or time(0, 0))
    code = segment.el(code_index) if code_index is not None else ""
    if not code:
        return When(value)
    meaning = TIME_CODES.get(code)
    if meaning is None:
        return RecordError(
            segment.line,
            segment.text,
            f"unknown time code {code!r} (element 623)",
            f"{name}-{code_index:02d}",
        )
    if meaning.kind == "offset":
        offset = timezone(timedelta(minutes=meaning.offset_minutes))
        return When(value.replace(tzinfo=offset), code=code)
    if meaning.kind == "zone":
        return When(value, zone=meaning.zone, code=code)
    return When(value, code=code)


def weight_in_kg(value: str, unit: str) -> Decimal | None:
    factor = WEIGHT_UNITS.get(unit.upper())
    if factor is None or not value:
        return None
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            return None
        # quantize raises InvalidOperation for absurd magnitudes (e.g. "9E+40"): not a weight
        return (amount * factor).quantize(Decimal("0.001"))
    except InvalidOperation:
        return None


def country_alpha2(code: str) -> str:
    code = code.upper()
    if len(code) == 2 and code.isalpha():
        return code
    return COUNTRY_ALPHA3.get(code, "")


def dms_degrees(value: str, direction: str, limit: int) -> float | None:
    """MS1 latitude/longitude DDDMMSS (degrees, minutes, seconds) -> signed decimal degrees."""
    if len(value) < 5 or not value.isdigit():
        return None
    degrees, minutes, seconds = int(value[:-4]), int(value[-4:-2]), int(value[-2:])
    if degrees > limit or minutes > 59 or seconds > 59:
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if direction.upper() in ("S", "W"):
        result = -result
    return round(result, 6)


@dataclass(slots=True)
class Party:
    entity: str
    name: str = ""
    id_qualifier: str = ""
    id: str = ""
    address: str = ""
    city: str = ""
    state: str = ""
    postal: str = ""
    country: str = ""

    def place_name(self) -> str:
        city = ", ".join(part for part in (self.city, self.state) if part)
        return city or self.name

    def place(self, record: Record) -> None:
        """The party's N4 address as the record's place (its zone is the city's)."""
        record.location_name = self.place_name()
        record.country = country_alpha2(self.country)
        record.city, record.state, record.postal_code = self.city, self.state, self.postal

    def as_dict(self) -> dict[str, str]:
        keys = ("entity", "name", "id_qualifier", "id", "address", "city", "state", "postal")
        out = {key: getattr(self, key) for key in keys if getattr(self, key)}
        if self.country:
            out["country"] = self.country
        return out


def party_of(segment: Segment) -> Party:
    return Party(segment.el(1), segment.el(2), segment.el(3), segment.el(4))


def add_address(party: Party | None, segment: Segment) -> None:
    if party is None:
        return
    if segment.tag == "N3":
        party.address = " ".join(p for p in (segment.el(1), segment.el(2)) if p)
    elif segment.tag == "N4":
        party.city, party.state, party.postal = segment.el(1), segment.el(2), segment.el(3)
        party.country = segment.el(4)


def add_reference(references: dict[str, str], key: str, value: str) -> None:
    if not value:
        return
    if key not in references:
        references[key] = value
        return
    if references[key] == value:
        return
    number = 2
    while f"{key}#{number}" in references:
        number += 1
    references[f"{key}#{number}"] = value


def base_extra(tx: TransactionSet, envelope: Envelope) -> dict[str, object]:
    return {
        "interchange": envelope.interchange,
        "group": envelope.group_control,
        "transaction_set": tx.kind,
        "set_control": tx.control,
        "version": envelope.version,
    }
