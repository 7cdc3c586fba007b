"""China customs cross-border e-commerce (CEB) XML messages, 2018 No. 113 and 2022-05 specs.

One payload is one message: a root such as `<ceb:CEB311Message>` in the namespace
`http://www.chinaport.gov.cn/ceb` whose children are the records (Order, Payment, Logistics,
Inventory, ...; receipts are `*Return` elements), followed by BaseTransfer and a signature.

The document is parsed incrementally (64 KiB chunks through a defused expat parser); each record
is handed on as soon as its end tag is read and then dropped from the tree, so memory stays flat
however many records a message holds. DTDs, entity declarations (billion laughs) and external
entities are refused with a FormatError: CEB messages never carry a DTD.

What each record becomes (see `codes` for every code decision):
- 311/303 Order, 411 Payment, 403 Receipts (export receipt of payment): `customs_document`
  (doc_type order / payment) for the three-document match, see `match_documents`.
- 511/505 Logistics: a `shipment` record (creates or enriches the shipment) AND a
  `customs_document` doc_type waybill with the same data.
- 513 LogisticsStatus: `event` (S = delivered).
- 621/603 Inventory: `event` customs_import_submitted / customs_export_submitted; a draft
  (appStatus 1, stored at the e-port, not declared) is only a `customs_document` doc_type inventory.
- 507 Arrival, 711 Delivery: `event` arrived; 509 Departure: `event` departed; 607 WayBill:
  `event` customs_export_submitted; one event per listed logisticsNo.
- 623/605 InvtCancel and 625/213 InvtRefund: `customs_document` (inventory_cancel / refund).
- every `*Return` receipt: `event` mapped from returnStatus (a draft receipt, status 1, and the
  receipts of cancel/refund applications are `customs_document`s: their 800 means "the
  cancellation was approved", not "the parcel was released").
- anything else (701 SummaryApply, 792 SummaryResult, 215 InvtRefundDetail, ...): RecordError.

Times are `YYYYMMDDhhmmss` (receipts add milliseconds: `YYYYMMDDhhmmssfff`) without an offset.
The specification defines them as China time, so each record carries a naive datetime plus
`time_zone = "Asia/Shanghai"`: a rule of the format, not a guess from the feed.

Read in this order: `xml_stream` (the defused streaming parser; `parse` is here), `record` (one
record element and its checked fields), `messages` (one handler per record element), `codes`
(customs code tables) and `matching` (the three-document match).
"""

from warehouses.parsers.ceb.matching import match_documents
from warehouses.parsers.ceb.record import CEB_NS, TIME_ZONE, parse_time
from warehouses.parsers.ceb.xml_stream import declared_encoding, parse

__all__ = ["CEB_NS", "TIME_ZONE", "declared_encoding", "match_documents", "parse", "parse_time"]
