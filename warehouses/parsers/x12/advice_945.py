"""X12 945 Warehouse shipping advice: one `warehouse_dispatched` Record per set.

Tracking number: W06-04 (shipment identification number, the id the warehouse ships under);
when it is empty, W06-02 (depositor order number). Order number: W06-02. Time: the G62
"shipped on this date" (qualifier 11) with its time and time code, else the W06-03 date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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
class _Scan:
    """What a 945's segments say, gathered in one pass."""

    w06: Segment | None = None
    w27: Segment | None = None
    w03: Segment | None = None
    shipped: Segment | None = None  # G62 qualifier 11
    references: dict[str, str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)
    lines: list[dict[str, object]] = field(default_factory=list)
    party: Party | None = None  # the N1 that N3/N4 segments complete
    current: dict[str, object] | None = None  # the W12 line N9/G69 segments complete

    def add(self, segment: Segment) -> None:
        reader = _READERS.get(segment.tag)
        if reader is not None:
            reader(self, segment)


def _w06(scan: _Scan, segment: Segment) -> None:
    if scan.w06 is None:
        scan.w06 = segment


def _n1(scan: _Scan, segment: Segment) -> None:
    scan.party = party_of(segment)
    scan.parties.setdefault(scan.party.entity, scan.party)


def _n3_n4(scan: _Scan, segment: Segment) -> None:
    add_address(scan.party, segment)


def _n9(scan: _Scan, segment: Segment) -> None:
    if scan.current is not None:
        line_refs = scan.current.setdefault("references", {})
        if isinstance(line_refs, dict):
            add_reference(line_refs, f"N9:{segment.el(1)}", segment.el(2))
    else:
        add_reference(scan.references, f"N9:{segment.el(1)}", segment.el(2))


def _w27(scan: _Scan, segment: Segment) -> None:
    if scan.w27 is None:
        scan.w27 = segment


def _g62(scan: _Scan, segment: Segment) -> None:
    scan.dates[f"G62:{segment.el(1)}"] = segment.el(2) + (
        f"T{segment.el(4)}" if segment.el(4) else ""
    )
    if segment.el(1) == "11" and scan.shipped is None:
        scan.shipped = segment


def _lx(scan: _Scan, segment: Segment) -> None:
    scan.current = None


def _w12(scan: _Scan, segment: Segment) -> None:
    scan.current = {
        k: v
        for k, v in (
            ("status", segment.el(1)),
            ("quantity_ordered", segment.el(2)),
            ("quantity_shipped", segment.el(3)),
            ("unit", segment.el(5)),
            ("upc", segment.el(6)),
            ("product_id_qualifier", segment.el(7)),
            ("product_id", segment.el(8)),
            ("lot", segment.el(9)),
            ("weight", segment.el(10)),
            ("weight_unit", segment.el(12)),
        )
        if v
    }
    if len(scan.lines) < LIST_LIMIT:
        scan.lines.append(scan.current)


def _g69(scan: _Scan, segment: Segment) -> None:
    if scan.current is not None:
        scan.current["description"] = segment.el(1)


def _w03(scan: _Scan, segment: Segment) -> None:
    if scan.w03 is None:
        scan.w03 = segment
        scan.party = None


_READERS: dict[str, Callable[[_Scan, Segment], None]] = {
    "W06": _w06,
    "N1": _n1,
    "N3": _n3_n4,
    "N4": _n3_n4,
    "N9": _n9,
    "W27": _w27,
    "G62": _g62,
    "LX": _lx,
    "W12": _w12,
    "G69": _g69,
    "W03": _w03,
}


def warehouse_shipping_advice(tx: TransactionSet, envelope: Envelope) -> Iterator[ParseItem]:
    """945: one `warehouse_dispatched` Record per set (see the module docstring)."""
    scan = _Scan()
    for segment in tx.segments[1:-1]:
        scan.add(segment)
    w06, shipped = scan.w06, scan.shipped
    if w06 is None:
        yield RecordError(tx.header.line, tx.raw(), "945 has no W06 segment", "W06")
        return
    tracking = w06.el(4) or w06.el(2)
    if not tracking:
        yield RecordError(
            w06.line, tx.raw(), "W06-02 and W06-04 are both empty: no shipment reference", "W06-04"
        )
        return
    when = when_of(shipped, 2, 4, 5) if shipped is not None else when_of(w06, 3, None, None)
    if isinstance(when, RecordError):
        when.raw = tx.raw()
        yield when
        return

    record = Record(
        line=w06.line,
        raw=tx.raw(),
        tracking_number=tracking,
        event_code="warehouse_dispatched",
        partner_code="945",
        event_time=when.value,
        time_zone=when.zone,
        description="Warehouse shipping advice",
        order_number=w06.el(2),
    )
    extra = _extra(scan, w06, when, tx, envelope)
    _warehouse(record, scan, extra)
    _carrier_and_weight(record, scan, extra)
    record.extra = extra
    yield record


def _extra(
    scan: _Scan, w06: Segment, when: When, tx: TransactionSet, envelope: Envelope
) -> dict[str, object]:
    references, shipped = scan.references, scan.shipped
    add_reference(references, "W06-02", w06.el(2))
    add_reference(references, "W06-04", w06.el(4))
    add_reference(references, "W06-05", w06.el(5))
    add_reference(references, "W06-06", w06.el(6))
    extra = base_extra(tx, envelope)
    extra["references"] = references
    extra["event_time_source"] = "G62:11" if shipped is not None else "W06-03"
    if shipped is None or not shipped.el(4):
        # A date without a time of day: midnight is a placeholder, not an observed time.
        extra["date_only"] = True
    if when.code:
        extra["time_code"] = when.code
    if scan.dates:
        extra["dates"] = scan.dates
    if scan.lines:
        extra["lines"] = scan.lines
    extra["parties"] = {entity: p.as_dict() for entity, p in scan.parties.items()}
    return extra


def _warehouse(record: Record, scan: _Scan, extra: dict[str, object]) -> None:
    """The shipping warehouse (N1 WH, else SF) as the record's place."""
    warehouse = scan.parties.get("WH") or scan.parties.get("SF")
    if warehouse is None:
        return
    warehouse.place(record)
    if warehouse.name:
        extra["warehouse"] = warehouse.name
    if warehouse.id:
        extra["warehouse_id"] = f"{warehouse.id_qualifier}:{warehouse.id}"


def _carrier_and_weight(record: Record, scan: _Scan, extra: dict[str, object]) -> None:
    """W27 carrier and transport method; W03 weight and units shipped."""
    w27, w03 = scan.w27, scan.w03
    if w27 is not None:
        record.carrier = w27.el(2)
        record.transport_mode = TRANSPORT_METHODS.get(w27.el(1), "")
    if w03 is not None:
        weight = weight_in_kg(w03.el(2), w03.el(3))
        if weight is not None:
            record.weight_kg = weight
            extra["weight"] = {"value": w03.el(2), "unit": w03.el(3)}
        if w03.el(1):
            extra["units_shipped"] = w03.el(1)
