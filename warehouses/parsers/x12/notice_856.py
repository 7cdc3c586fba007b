"""X12 856 Ship notice / manifest: one `info_received` Record per shipment-level HL (HL-03 = S).

Tracking number: BSN-02 (shipment identification); time: BSN-03 date + BSN-04 time, which carry
no time code and so are local (naive). Weight: sum of the shipment-level TD1 weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from warehouses.parsers.base import ParseItem, Record, RecordError
from warehouses.parsers.x12.codes import TRANSPORT_METHODS
from warehouses.parsers.x12.segments import Envelope, Segment, TransactionSet
from warehouses.parsers.x12.values import (
    LIST_LIMIT,
    Party,
    When,
    add_address,
    add_reference,
    base_extra,
    party_of,
    weight_in_kg,
    when_of,
)


@dataclass(slots=True)
class _Shipment:
    hl: Segment
    segments: list[Segment] = field(default_factory=list)


def ship_notice(tx: TransactionSet, envelope: Envelope) -> Iterator[ParseItem]:
    """856: one `info_received` Record per shipment-level HL (HL-03 = S).

    Tracking number: BSN-02 (shipment identification); time: BSN-03 date + BSN-04 time, which
    carry no time code and so are local (naive). Weight: sum of the shipment-level TD1 weights.
    """
    bsn: Segment | None = None
    shipments: list[_Shipment] = []
    for segment in tx.segments[1:-1]:
        if segment.tag == "BSN" and bsn is None:
            bsn = segment
        elif segment.tag == "HL" and segment.el(3) == "S":
            shipments.append(_Shipment(segment, [segment]))
        elif shipments:
            shipments[-1].segments.append(segment)
    if bsn is None:
        yield RecordError(tx.header.line, tx.raw(), "856 has no BSN segment", "BSN")
        return
    if not bsn.el(2):
        yield RecordError(bsn.line, bsn.text, "BSN-02 shipment identification is empty", "BSN-02")
        return
    if not shipments:
        yield RecordError(
            tx.header.line, tx.raw(), "856 has no shipment-level HL (HL-03 = S)", "HL-03"
        )
        return
    when = when_of(bsn, 3, 4, None)
    if isinstance(when, RecordError):
        when.raw = bsn.text
        yield when
        return
    for shipment in shipments:
        yield _shipment_record(tx, envelope, bsn, when, shipment)


@dataclass(slots=True)
class _Scan:
    """What one shipment's segments say (its HL and everything down to the next shipment HL)."""

    references: dict[str, str] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)
    parties: dict[str, Party] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)
    items: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    party: Party | None = None  # the N1 that N3/N4 segments complete
    level: str = "S"  # HL-03 of the level being read (S shipment, O order, I item, P pack ...)
    weight: Decimal | None = None
    weights: list[dict[str, str]] = field(default_factory=list)
    carrier: str = ""
    mode: str = ""
    shipped_at: str = ""

    def add(self, segment: Segment) -> None:
        reader = _READERS.get(segment.tag)
        if reader is not None:
            reader(self, segment)


def _hl(scan: _Scan, segment: Segment) -> None:
    scan.level = segment.el(3)
    scan.party = None


def _td1(scan: _Scan, segment: Segment) -> None:
    if scan.level != "S":
        return
    kg = weight_in_kg(segment.el(7), segment.el(8))
    if kg is not None:
        scan.weight = kg if scan.weight is None else scan.weight + kg
        scan.weights.append({"value": segment.el(7), "unit": segment.el(8)})
    elif segment.el(7):
        scan.warnings.append(
            f"TD1 at segment {segment.line}: weight {segment.el(7)!r} "
            f"{segment.el(8)!r} not understood"
        )


def _td5(scan: _Scan, segment: Segment) -> None:
    if not scan.carrier:
        scan.carrier = segment.el(3) if segment.el(2) == "2" else ""
        scan.mode = TRANSPORT_METHODS.get(segment.el(4), "")


def _ref(scan: _Scan, segment: Segment) -> None:
    if segment.el(1) in ("PO", "ON") and segment.el(2) not in scan.orders:
        scan.orders.append(segment.el(2))
    prefix = "REF" if scan.level == "S" else f"REF[{scan.level}]"
    add_reference(scan.references, f"{prefix}:{segment.el(1)}", segment.el(2))


def _prf(scan: _Scan, segment: Segment) -> None:
    if segment.el(1) and segment.el(1) not in scan.orders:
        scan.orders.append(segment.el(1))


def _dtm(scan: _Scan, segment: Segment) -> None:
    if scan.level != "S" or segment.el(1) != "011":
        return
    shipped = when_of(segment, 2, 3, 4)
    if isinstance(shipped, RecordError):
        # The shipped date is a detail of the notice, not its event: keep the record.
        scan.warnings.append(f"DTM*011 at segment {segment.line}: {shipped.reason}")
    else:
        scan.shipped_at = shipped.value.isoformat()


def _n1(scan: _Scan, segment: Segment) -> None:
    scan.party = party_of(segment)
    if scan.level == "S":
        scan.parties.setdefault(scan.party.entity, scan.party)


def _n3_n4(scan: _Scan, segment: Segment) -> None:
    add_address(scan.party, segment)


def _man(scan: _Scan, segment: Segment) -> None:
    if len(scan.packages) < LIST_LIMIT and segment.el(2):
        scan.packages.append(segment.el(2))


def _lin(scan: _Scan, segment: Segment) -> None:
    if len(scan.items) < LIST_LIMIT:
        scan.items.append({"qualifier": segment.el(2), "product_id": segment.el(3)})


def _sn1(scan: _Scan, segment: Segment) -> None:
    if scan.items:
        scan.items[-1]["quantity"] = segment.el(2)
        scan.items[-1]["unit"] = segment.el(3)


_READERS: dict[str, Callable[[_Scan, Segment], None]] = {
    "HL": _hl,
    "TD1": _td1,
    "TD5": _td5,
    "REF": _ref,
    "PRF": _prf,
    "DTM": _dtm,
    "N1": _n1,
    "N3": _n3_n4,
    "N4": _n3_n4,
    "MAN": _man,
    "LIN": _lin,
    "SN1": _sn1,
}


def _shipment_record(
    tx: TransactionSet, envelope: Envelope, bsn: Segment, when: When, shipment: _Shipment
) -> Record:
    scan = _Scan()
    for segment in shipment.segments:
        scan.add(segment)
    orders = scan.orders
    record = Record(
        line=shipment.hl.line,
        raw=tx.raw(shipment.segments),
        tracking_number=bsn.el(2),
        event_code="info_received",
        partner_code="856",
        event_time=when.value,
        description="Advance ship notice",
        # One order per shipment is the common case; a consolidated shipment lists its orders in
        # extra["order_numbers"] rather than picking one arbitrarily.
        order_number=orders[0] if len(orders) == 1 else "",
        carrier=scan.carrier,
        transport_mode=scan.mode,
        weight_kg=scan.weight,
        extra=_extra(scan, tx, envelope, bsn, shipment),
    )
    origin = scan.parties.get("SF") or scan.parties.get("SH")
    if origin is not None:
        origin.place(record)
    return record


def _extra(
    scan: _Scan, tx: TransactionSet, envelope: Envelope, bsn: Segment, shipment: _Shipment
) -> dict[str, object]:
    extra = base_extra(tx, envelope)
    add_reference(scan.references, "BSN-02", bsn.el(2))
    extra["references"] = scan.references
    extra["hl"] = shipment.hl.el(1)
    if len(scan.orders) > 1:
        extra["order_numbers"] = scan.orders
    optional = (
        ("shipped_at", scan.shipped_at),
        ("packages", scan.packages),
        ("items", scan.items),
        ("weight", scan.weights),
        ("warnings", scan.warnings),
    )
    for key, value in optional:
        if value:
            extra[key] = value
    if not bsn.el(4):
        extra["date_only"] = True
    extra["parties"] = {entity: p.as_dict() for entity, p in scan.parties.items()}
    return extra
