"""Events that need the database before they can be normalized, resolved set-based.

EDI interchange events (checked against the feed's interchange history first), EPCIS events
whose identifiers the feed maps (EPC keys), and CEB receipts that name only a declaration
number: each is resolved to its parcels, normalized like any event and appended to the batch's
events, which the recorder records right after.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import connection

from shipments.identifiers import tracking_number_clean
from shipments.recording import EventInput
from warehouses.ingest.apply.customs import CEB_FIELDS
from warehouses.ingest.apply.retractions import retracted_reject
from warehouses.ingest.apply.values import parcel, reject, text, unit_number
from warehouses.normalize.context import FeedContext
from warehouses.normalize.events import normalize_event, rejected
from warehouses.parsers.base import Record, RecordError, RecordRejected

if TYPE_CHECKING:
    from warehouses.models import FeedRun

_DOCUMENT_REFERENCES = """
SELECT message, doc_type, order_no, logistics_no, cop_no, invt_no, pre_no, pay_transaction_id
FROM warehouses_customsdocument
WHERE (cop_no <> '' AND cop_no = ANY(%(cop)s))
   OR (invt_no <> '' AND invt_no = ANY(%(invt)s))
   OR (pre_no <> '' AND pre_no = ANY(%(pre)s))
   OR (pay_transaction_id <> '' AND pay_transaction_id = ANY(%(txn)s))
   OR (doc_type = 'waybill' AND order_no <> '' AND order_no = ANY(%(order)s))
"""

# The conditions repeat the partial indexes' predicates so the planner can use them.
_EVENT_REFERENCES = """
SELECT DISTINCT e.extra->>'message', e.extra->>'cop_no', e.extra->>'invt_no',
       e.extra->>'pre_no', s.tracking_number
FROM shipments_trackingevent e
JOIN shipments_shipment s ON s.id = e.shipment_id
WHERE (e.extra ? 'cop_no' AND e.extra->>'cop_no' = ANY(%(cop)s))
   OR (e.extra ? 'invt_no' AND e.extra->>'invt_no' = ANY(%(invt)s))
"""

_SHIPMENTS_OF_ORDERS = """
SELECT order_number, tracking_number FROM shipments_shipment WHERE order_number = ANY(%s)
"""


def _declaration_of(receipt_message: str) -> str:
    """CEB receipts answer the message numbered one below them (622 answers 621)."""
    digits = receipt_message.removeprefix("CEB")
    return f"CEB{int(digits) - 1}" if digits.isdigit() else ""


def _wanted(receipts: Sequence[Record]) -> dict[str, list[str]]:
    """The references the receipts name, by kind, as the reference queries' parameters."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for record in receipts:
        for key in record.extra.get("match_by") or []:  # type: ignore[attr-defined]
            value = text(record.extra.get(str(key)))
            if value:
                wanted[str(key)].add(value)
    return {
        "cop": sorted(wanted["cop_no"]),
        "invt": sorted(wanted["invt_no"]),
        "pre": sorted(wanted["pre_no"]),
        "txn": sorted(wanted["pay_transaction_id"]),
        "order": sorted(wanted["order_no"]),
    }


class _References:
    """What earlier messages taught us: declaration numbers -> parcels, orders -> parcels."""

    def __init__(self, receipts: Sequence[Record]) -> None:
        params = _wanted(receipts)
        # (message, key, value) -> tracking numbers, or -> order numbers
        self.parcels: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self.orders_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self.by_order: dict[str, set[str]] = defaultdict(set)
        orders = set(params["order"])
        with connection.cursor() as cursor:
            cursor.execute(_DOCUMENT_REFERENCES, params)
            for message, doc_type, order_no, logistics_no, *refs in cursor.fetchall():
                self._document(message, order_no, logistics_no, refs, orders)
                if doc_type == "waybill" and order_no and logistics_no:
                    self.by_order[order_no].add(tracking_number_clean(logistics_no))
            if params["cop"] or params["invt"]:
                cursor.execute(_EVENT_REFERENCES, params)
                for message, cop_no, invt_no, pre_no, tracking in cursor.fetchall():
                    for key, value in (
                        ("cop_no", cop_no),
                        ("invt_no", invt_no),
                        ("pre_no", pre_no),
                    ):
                        if value:
                            self.parcels[(message or "", key, value)].add(tracking)
            if orders:
                cursor.execute(_SHIPMENTS_OF_ORDERS, [sorted(orders)])
                for order_no, tracking in cursor.fetchall():
                    self.by_order[order_no].add(tracking)

    def _document(
        self, message: str, order_no: str, logistics_no: str, refs: list[str], orders: set[str]
    ) -> None:
        """Learn what a stored customs document's references point to; `orders` gets its
        order number."""
        names = ("cop_no", "invt_no", "pre_no", "pay_transaction_id")
        for key, value in zip(names, refs, strict=True):
            if not value:
                continue
            if logistics_no:
                self.parcels[(message, key, value)].add(tracking_number_clean(logistics_no))
            if order_no:
                self.orders_of[(message, key, value)].add(order_no)
                orders.add(order_no)

    def resolve(self, record: Record) -> tuple[str, list[str]]:
        """(reference used, tracking numbers) of a receipt, or ("", []) when nothing matches."""
        declaration = _declaration_of(text(record.extra.get("message")))
        for key in record.extra.get("match_by") or []:  # type: ignore[attr-defined]
            key = str(key)
            value = text(record.extra.get(key))
            if not value:
                continue
            if key == "order_no":
                found = set(self.by_order.get(value, ()))
            else:
                found = set(self.parcels.get((declaration, key, value), ()))
                for order_no in self.orders_of.get((declaration, key, value), ()):
                    found |= self.by_order.get(order_no, set())
            if found:
                return key, sorted(found)
        return "", []


def _unresolved_reason(record: Record) -> str:
    extra = record.extra
    message = text(extra.get("message")) or "receipt"
    declaration = _declaration_of(message) or "declaration"
    refs = ", ".join(
        f"{CEB_FIELDS.get(str(k), str(k))} {text(extra.get(str(k)))!r}"
        for k in extra.get("match_by") or []  # type: ignore[attr-defined]
        if text(extra.get(str(k)))
    )
    return (
        f"{message} receipt (returnStatus {text(extra.get('return_status'))}) has no "
        f"logisticsNo, and its references ({refs or 'none'}) match no parcel of an earlier "
        f"{declaration} or order: ingest the declaration first"
    )


def events_prepare(
    run: FeedRun,
    records: Sequence[Record],
    ctx: FeedContext,
    events: list[EventInput],
    retracting: dict[str, int],
    retracted: dict[str, int],
) -> list[RecordError]:
    """Normalize the deferred event records into `events`; return the rejects.

    `retracting` holds this batch's own retractions (eventID -> line), `retracted` the eventIDs
    earlier runs retracted (eventID -> run).
    """
    rejects: list[RecordError] = []
    receipts = [r for r in records if not r.tracking_number and not r.unit_id]
    references = _References(receipts) if receipts else None
    for record in records:
        event_id = text(record.extra.get("event_id"))
        if event_id and event_id in retracting:
            rejects.append(
                reject(
                    record,
                    "eventID",
                    f"event {event_id!r} is retracted by the error declaration on line "
                    f"{retracting[event_id]}",
                )
            )
            continue
        if event_id and event_id in retracted:
            rejects.append(retracted_reject(record, event_id, retracted[event_id]))
            continue
        candidates: list[Record] = []
        if record.tracking_number or record.unit_id:
            try:
                tracking = parcel(record, ctx) if record.tracking_number else ""
                unit = unit_number(record, ctx) if record.unit_id else ""
            except RecordRejected as exc:
                rejects.append(rejected(record, exc))
                continue
            candidates.append(dataclasses.replace(record, tracking_number=tracking, unit_id=unit))
        elif references is not None:
            key, parcels = references.resolve(record)
            if not parcels:
                rejects.append(reject(record, "logisticsNo", _unresolved_reason(record)))
                continue
            for tracking in parcels:
                extra = {**record.extra, "resolved_by": key}
                candidates.append(
                    dataclasses.replace(record, tracking_number=tracking, extra=extra)
                )
        for candidate in candidates:
            result = normalize_event(candidate, ctx)
            if isinstance(result, RecordError):
                rejects.append(result)
            else:
                events.append(result)
    return rejects
