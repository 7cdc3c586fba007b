"""Customs documents and the three-document match (三单对碰) of their orders.

Customs documents are filed under (doc_type, number) across feeds, because customs matches the
order, payment and waybill of one order, sent by three different parties, by number. The
three-document match of each order is kept in CustomsMatch (one row per order number); the
match itself is `warehouses.parsers.ceb.matching.match_documents`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

from shipments.identifiers import tracking_number_clean
from warehouses.ingest.apply.values import instant, reject, text
from warehouses.normalize.context import FeedContext
from warehouses.parsers.base import Record, RecordError, RecordRejected
from warehouses.parsers.ceb.matching import match_documents

if TYPE_CHECKING:
    from warehouses.models import FeedRun

_MATCHED_TYPES = ("order", "payment", "waybill")
_RECEIPT_TYPES = frozenset({"receipt", "inventory_cancel_receipt", "refund_receipt"})
# CEB references by which a receipt without logisticsNo names its declaration, with the field
# name an operator sees in the XML.
CEB_FIELDS = {
    "logistics_no": "logisticsNo",
    "order_no": "orderNo",
    "invt_no": "invtNo",
    "cop_no": "copNo",
    "pre_no": "preNo",
    "pay_transaction_id": "payTransactionId",
}


def _document_number(doc_type: str, extra: dict[str, Any], record: Record) -> str:
    order_no, logistics_no = text(extra.get("order_no")), text(extra.get("logistics_no"))
    if doc_type in ("order", "payment"):
        return order_no
    if doc_type == "waybill":
        return logistics_no
    number = (
        logistics_no
        or text(extra.get("invt_no"))
        or text(extra.get("cop_no"))
        or text(extra.get("pre_no"))
        or order_no
        or text(extra.get("pay_transaction_id"))
    )
    if number and doc_type in _RECEIPT_TYPES:
        # Several receipts answer one declaration (2 declaring, 120 accepted, 800 released).
        when = record.event_time.isoformat() if isinstance(record.event_time, datetime) else ""
        number = f"{number}#{text(extra.get('return_status'))}@{when}"
    return number


_UPSERT_DOCUMENTS = """
INSERT INTO warehouses_customsdocument AS d (
    doc_type, number, message, direction, order_no, logistics_no, cop_no, invt_no, pre_no,
    pay_transaction_id, data, occurred_at, feed_id, run_id, line, created_at, updated_at)
SELECT x.doc_type, x.number, x.message, x.direction, x.order_no, x.logistics_no, x.cop_no,
       x.invt_no, x.pre_no, x.txn, x.data::jsonb, x.at, %s, %s, x.line, now(), now()
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::int[])
     AS x(doc_type, number, message, direction, order_no, logistics_no, cop_no, invt_no, pre_no,
          txn, data, at, line)
ORDER BY x.doc_type, x.number
ON CONFLICT (doc_type, number) DO UPDATE SET
    message = EXCLUDED.message, direction = EXCLUDED.direction, order_no = EXCLUDED.order_no,
    logistics_no = EXCLUDED.logistics_no, cop_no = EXCLUDED.cop_no,
    invt_no = EXCLUDED.invt_no, pre_no = EXCLUDED.pre_no,
    pay_transaction_id = EXCLUDED.pay_transaction_id, data = EXCLUDED.data,
    occurred_at = EXCLUDED.occurred_at, feed_id = EXCLUDED.feed_id, run_id = EXCLUDED.run_id,
    line = EXCLUDED.line, updated_at = now()
"""

_DOCUMENTS_OF_ORDERS = """
SELECT order_no, doc_type, direction, logistics_no, data
FROM warehouses_customsdocument
WHERE doc_type IN ('order', 'payment', 'waybill') AND order_no = ANY(%s)
ORDER BY updated_at, id
"""

_UPSERT_MATCHES = """
INSERT INTO warehouses_customsmatch AS c (
    order_no, direction, result, missing, mismatched, logistics_no, shipment_id, checked_at)
SELECT x.o, x.dir, x.r, x.mi::jsonb, x.mm::jsonb, x.l,
       coalesce((SELECT s.id FROM shipments_shipment s
                 WHERE x.l <> '' AND s.tracking_number = x.l),
                (SELECT min(s.id) FROM shipments_shipment s WHERE s.order_number = x.o)),
       now()
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS x(o, dir, r, mi, mm, l)
ORDER BY x.o
ON CONFLICT (order_no) DO UPDATE SET
    direction = EXCLUDED.direction, result = EXCLUDED.result, missing = EXCLUDED.missing,
    mismatched = EXCLUDED.mismatched, logistics_no = EXCLUDED.logistics_no,
    shipment_id = coalesce(EXCLUDED.shipment_id, c.shipment_id), checked_at = now()
"""

# The order's goods value is the shipment's declared value (blank facts only).
_DECLARED_VALUES = """
UPDATE shipments_shipment s SET
    declared_value = (d.data->>'goods_value')::numeric,
    currency = coalesce(nullif(s.currency, ''), d.data->>'currency', ''),
    updated_at = now()
FROM warehouses_customsdocument d
WHERE d.doc_type = 'order' AND d.order_no = ANY(%s) AND s.order_number = d.order_no
  AND s.declared_value IS NULL AND coalesce(d.data->>'goods_value', '') <> ''
"""


def documents_apply(run: FeedRun, records: Sequence[Record], ctx: FeedContext) -> list[RecordError]:
    rejects: list[RecordError] = []
    rows: dict[tuple[str, str], tuple[Record, dict[str, Any], datetime | None]] = {}
    for record in records:
        extra = dict(record.extra)
        doc_type = text(extra.get("doc_type"))
        number = _document_number(doc_type, extra, record)
        if not doc_type:
            rejects.append(reject(record, "doc_type", "customs document without a doc_type"))
            continue
        if not number:
            need = "orderNo" if doc_type in ("order", "payment") else "logisticsNo"
            rejects.append(
                reject(record, need, f"{doc_type} document has no {need} to file it under")
            )
            continue
        long = [k for k in CEB_FIELDS if len(text(extra.get(k))) > 64]
        if long or len(number) > 200:
            name = CEB_FIELDS[long[0]] if long else "number"
            rejects.append(reject(record, name, f"{name} is longer than 64 characters"))
            continue
        try:
            at: datetime | None = instant(record, ctx, record.event_time, "appTime")
        except RecordRejected:
            at = None  # a document without a usable time is still a document
        # A later copy of the same document in one batch replaces the earlier (last wins).
        rows[(doc_type, number)] = (record, extra, at)
    if rows:
        keys = sorted(rows)
        values = [rows[k] for k in keys]
        columns: list[list[Any]] = [
            [k[0] for k in keys],
            [k[1] for k in keys],
            [text(e.get("message")) for _, e, _ in values],
            [text(e.get("direction")) for _, e, _ in values],
            [text(e.get("order_no")) for _, e, _ in values],
            [text(e.get("logistics_no")) for _, e, _ in values],
            [text(e.get("cop_no")) for _, e, _ in values],
            [text(e.get("invt_no")) for _, e, _ in values],
            [text(e.get("pre_no")) for _, e, _ in values],
            [text(e.get("pay_transaction_id")) for _, e, _ in values],
            [json.dumps(e, ensure_ascii=False, default=str) for _, e, _ in values],
            [at for _, _, at in values],
            [r.line for r, _, _ in values],
        ]
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT_DOCUMENTS, [run.feed_id, run.pk, *columns])
        orders = sorted(
            {
                text(e.get("order_no"))
                for (doc_type, _), (_, e, _) in rows.items()
                if doc_type in _MATCHED_TYPES and text(e.get("order_no"))
            }
        )
        _matches_compute(orders)
    return rejects


def _matches_compute(orders: Sequence[str]) -> None:
    """Recompute the three-document match of these orders from every stored document."""
    if not orders:
        return
    documents: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    directions: dict[str, str] = {}
    logistics: dict[str, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(_DOCUMENTS_OF_ORDERS, [list(orders)])
        for order_no, doc_type, direction, logistics_no, data in cursor.fetchall():
            document = data if isinstance(data, dict) else json.loads(data)
            documents[order_no][doc_type] = document  # ordered by updated_at: latest wins
            directions[order_no] = directions.get(order_no) or direction
            if doc_type == "waybill":
                logistics[order_no] = tracking_number_clean(logistics_no)
        rows = []
        for order_no in orders:
            found = documents.get(order_no, {})
            result, names = match_documents(
                found.get("order"), found.get("payment"), found.get("waybill")
            )
            rows.append(
                (
                    order_no,
                    directions.get(order_no, ""),
                    result,
                    json.dumps(names if result == "missing" else []),
                    json.dumps(names if result == "mismatch" else []),
                    logistics.get(order_no, ""),
                )
            )
        cursor.execute(_UPSERT_MATCHES, [list(column) for column in zip(*rows, strict=True)])
        cursor.execute(_DECLARED_VALUES, [list(orders)])
