"""X12 214 Transportation carrier shipment status: one Record per AT7 status (inside LX loops)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from warehouses.parsers.base import ParseItem, Record, RecordError
from warehouses.parsers.x12.codes import (
    ESTIMATE_CODES,
    PLACE_PARTIES,
    REASON_CODES,
    STATUS_CODES,
    TRANSPORT_METHODS,
    StatusCode,
)
from warehouses.parsers.x12.segments import Envelope, Segment, TransactionSet
from warehouses.parsers.x12.values import (
    Party,
    add_address,
    add_reference,
    base_extra,
    country_alpha2,
    dms_degrees,
    party_of,
    weight_in_kg,
    when_of,
    x12_date,
    x12_time,
)


@dataclass(slots=True)
class _Status:
    at7: Segment
    segments: list[Segment]
    ms1: Segment | None = None


@dataclass(slots=True)
class _Lx:
    segments: list[Segment] = field(default_factory=list)
    statuses: list[_Status] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)
    weight: Segment | None = None


@dataclass(slots=True)
class _Scan:
    """What a 214's segments say, gathered in one pass: the heading, then its LX loops."""

    b10: Segment | None = None
    ms3: Segment | None = None
    references: dict[str, str] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)
    loops: list[_Lx] = field(default_factory=list)
    party: Party | None = None  # the N1 that N3/N4 segments complete
    status: _Status | None = None  # the AT7 that MS1/MS2 segments complete

    def add(self, segment: Segment) -> None:
        loop = self.loops[-1] if self.loops else None
        if loop is not None:
            loop.segments.append(segment)
        reader = _READERS.get(segment.tag)
        if reader is not None:
            reader(self, segment, loop)


def _b10(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    if scan.b10 is None:
        scan.b10 = segment


def _l11(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    target = loop.references if loop is not None else scan.references
    add_reference(target, f"L11:{segment.el(2)}", segment.el(1))


def _n1(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    scan.party = party_of(segment)
    (loop.parties if loop is not None else scan.parties).setdefault(scan.party.entity, scan.party)


def _n3_n4(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    add_address(scan.party, segment)


def _ms3(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    if scan.ms3 is None:
        scan.ms3 = segment


def _lx(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    scan.loops.append(_Lx(segments=[segment]))
    scan.party = scan.status = None


def _at7(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    if loop is None:  # an AT7 without LX: tolerated as its own loop
        loop = _Lx(segments=[segment])
        scan.loops.append(loop)
    scan.status = _Status(segment, [segment])
    loop.statuses.append(scan.status)


def _ms1_ms2(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    status = scan.status
    if status is None:
        return
    status.segments.append(segment)
    if segment.tag == "MS1" and status.ms1 is None:
        status.ms1 = segment


def _at8(scan: _Scan, segment: Segment, loop: _Lx | None) -> None:
    if loop is not None and loop.weight is None:
        loop.weight = segment


_READERS: dict[str, Callable[[_Scan, Segment, _Lx | None], None]] = {
    "B10": _b10,
    "L11": _l11,
    "N1": _n1,
    "N3": _n3_n4,
    "N4": _n3_n4,
    "MS3": _ms3,
    "LX": _lx,
    "AT7": _at7,
    "MS1": _ms1_ms2,
    "MS2": _ms1_ms2,
    "AT8": _at8,
}


def shipment_status(tx: TransactionSet, envelope: Envelope) -> Iterator[ParseItem]:
    """214: one Record per AT7 status (inside LX loops)."""
    scan = _Scan()
    for segment in tx.segments[1:-1]:
        scan.add(segment)
    b10, ms3, references, parties = scan.b10, scan.ms3, scan.references, scan.parties
    if b10 is None:
        yield RecordError(
            tx.header.line, tx.raw(), "214 has no B10 segment (no shipment reference)", "B10"
        )
        return
    tracking = b10.el(2) or b10.el(1)
    if not tracking:
        yield RecordError(
            b10.line, b10.text, "B10-01 and B10-02 are both empty: no shipment reference", "B10-02"
        )
        return
    add_reference(references, "B10-01", b10.el(1))
    add_reference(references, "B10-02", b10.el(2))
    statuses = [(loop, item) for loop in scan.loops for item in loop.statuses]
    if not statuses:
        yield RecordError(tx.header.line, tx.raw(), "214 has no AT7 shipment status", "AT7")
        return
    carrier = b10.el(3) or (ms3.el(1) if ms3 is not None else "")
    mode = TRANSPORT_METHODS.get(ms3.el(4), "") if ms3 is not None else ""
    for loop, item in statuses:
        yield _status_record(
            tx, envelope, b10, item, loop, references, parties, tracking, carrier, mode
        )


def _status_record(
    tx: TransactionSet,
    envelope: Envelope,
    b10: Segment,
    item: _Status,
    loop: _Lx,
    heading_refs: dict[str, str],
    heading_parties: dict[str, Party],
    tracking: str,
    carrier: str,
    mode: str,
) -> ParseItem:
    at7 = item.at7
    raw = tx.raw([b10, *item.segments])
    code = at7.el(1)
    if not code:
        appointment = at7.el(3)
        reason = (
            f"appointment status code {appointment!r} (AT7-03) is an appointment, not a "
            "tracking event; not mapped"
            if appointment
            else "AT7 has neither a shipment status (AT7-01) nor an appointment (AT7-03)"
        )
        return RecordError(at7.line, raw, reason, "AT7-01")
    # A code outside the table is the normalizer's to decide (feed mapping, then the feed's
    # unknown-code policy): a carrier's own code is onboarded by mapping it (docs/mapping.md).
    mapped = STATUS_CODES.get(code) or StatusCode("", "")
    # Versions before 004010 wrote AT7-05 as YYMMDD followed by a century element, shifting the
    # time and time code one place to the right.
    if len(at7.el(5)) == 6 and len(at7.el(6)) == 2:
        legacy = Segment(
            at7.line,
            at7.text,
            [at7.el(0), *at7.elements[1:5], at7.el(6) + at7.el(5), *at7.elements[7:]],
        )
        when = when_of(legacy, 5, 6, 7)
    else:
        if at7.el(5) and not at7.el(6):
            return RecordError(at7.line, raw, "AT7-06 time is missing", "AT7-06")
        when = when_of(at7, 5, 6, 7)
    if isinstance(when, RecordError):
        when.raw = raw
        return when

    references = dict(heading_refs)
    for key, value in loop.references.items():
        add_reference(references, key, value)
    reason_code = at7.el(2)
    description = mapped.description
    if reason_code in REASON_CODES and reason_code != "NS":
        reason_text = REASON_CODES[reason_code]
        description = f"{description} ({reason_text})" if description else reason_text
    extra = base_extra(tx, envelope)
    extra["references"] = references
    extra["status_reason"] = reason_code
    if when.code:
        extra["time_code"] = when.code
    if loop.segments and loop.segments[0].tag == "LX":
        extra["lx"] = loop.segments[0].el(1)

    record = Record(
        line=at7.line,
        raw=raw,
        tracking_number=tracking,
        event_code=mapped.event_code,
        partner_code=code,
        code_field="AT7-01",
        code_note=""
        if mapped.event_code
        else f"unknown shipment status code {code!r} (element 1650)",
        event_time=when.value,
        time_zone=when.zone,
        description=description,
        order_number=references.get("L11:PO", "") or references.get("L11:CO", ""),
        carrier=carrier,
        transport_mode=mode,
    )
    if code in ESTIMATE_CODES:
        # An estimate is not something that happened: the estimated time goes to extra and the
        # event is dated by when the carrier issued it (GS date/time, the sender's clock).
        extra["estimated_delivery"] = when.value.isoformat()
        if when.zone:
            extra["estimated_delivery_time_zone"] = when.zone
        sent = x12_date(envelope.group_date)
        clock = x12_time(envelope.group_time)
        record.event_time = datetime.combine(sent, clock) if sent and clock else None
        record.time_zone = ""
        extra["event_time_source"] = "GS04/GS05"

    _status_location(record, item, loop, heading_parties, mapped.place, extra)
    if loop.weight is not None:
        weight = weight_in_kg(loop.weight.el(3), loop.weight.el(2))
        if weight is not None:
            record.weight_kg = weight
            extra["weight"] = {"value": loop.weight.el(3), "unit": loop.weight.el(2)}
    record.extra = extra
    return record


def _status_location(
    record: Record,
    item: _Status,
    loop: _Lx,
    heading_parties: dict[str, Party],
    place: str,
    extra: dict[str, object],
) -> None:
    """Location of an AT7: its MS1 city, else the pick-up/delivery party the code implies."""
    ms1 = item.ms1
    if ms1 is not None:
        latitude = dms_degrees(ms1.el(5), ms1.el(7), 90)
        longitude = dms_degrees(ms1.el(4), ms1.el(6), 180)
        if latitude is not None and longitude is not None:
            extra["latitude"] = latitude
            extra["longitude"] = longitude
            record.latitude, record.longitude = latitude, longitude
        if ms1.el(1):
            record.location_name = ", ".join(p for p in (ms1.el(1), ms1.el(2)) if p)
            record.country = country_alpha2(ms1.el(3))
            record.city, record.state = ms1.el(1), ms1.el(2)
            extra["location"] = {
                k: v
                for k, v in (("city", ms1.el(1)), ("state", ms1.el(2)), ("country", ms1.el(3)))
                if v
            }
            extra["location_source"] = "MS1"
            return
    for entity in PLACE_PARTIES.get(place, ()):
        party = loop.parties.get(entity) or heading_parties.get(entity)
        if party is not None:
            party.place(record)
            extra["location"] = party.as_dict()
            extra["location_source"] = f"N1:{entity}"
            return
