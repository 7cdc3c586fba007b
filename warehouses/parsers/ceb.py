"""China customs cross-border e-commerce (CEB) XML messages, 2018 No. 113 and 2022-05 specs.

One payload is one message: a root such as `<ceb:CEB311Message>` in the namespace
`http://www.chinaport.gov.cn/ceb` whose children are the records (Order, Payment, Logistics,
Inventory, ...; receipts are `*Return` elements), followed by BaseTransfer and a signature.

The document is parsed incrementally (64 KiB chunks through a defused expat parser); each record
is handed on as soon as its end tag is read and then dropped from the tree, so memory stays flat
however many records a message holds. DTDs, entity declarations (billion laughs) and external
entities are refused with a FormatError: CEB messages never carry a DTD.

What each record becomes (see customs_codes.py for every code decision):
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
Personal data the hub does not need (buyer ID numbers, telephones) is deliberately not copied.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from warehouses.parsers import customs_codes as codes
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError

CEB_NS = "http://www.chinaport.gov.cn/ceb"
# The CEB specification defines every time as China time; China has one zone and no DST.
TIME_ZONE = "Asia/Shanghai"

_CHUNK = 64 * 1024
_RAW_MAX = 2000
_ROOT_RE = re.compile(r"CEB(\d{3})(?:Message)?")
_DECL_ENCODING_RE = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_TIME_RE = re.compile(r"\d{14}(\d{3})?")

IMPORT_MESSAGES = frozenset(
    {311, 312, 411, 412, 511, 512, 513, 514, 621, 622, 623, 624, 625, 626, 711, 712}
)
EXPORT_MESSAGES = frozenset(
    {213, 214, 215, 216, 303, 304, 403, 404, 505, 506, 507, 508, 509, 510}
    | {603, 604, 605, 606, 607, 608, 701, 702, 792}
)
# Envelope parts that are not records.
_NOT_RECORDS = frozenset({"BaseTransfer", "BaseSubscribe", "ExtendMessage"})

# What a receipt acknowledges, by element name (kept in extra["receipt_for"]).
_RECEIPT_FOR = {
    "OrderReturn": "order",
    "PaymentReturn": "payment",
    "ReceiptsReturn": "payment",
    "LogisticsReturn": "waybill",
    "LogisticsStatusReturn": "logistics_status",
    "InventoryReturn": "inventory",
    "ArrivalReturn": "arrival",
    "DepartureReturn": "departure",
    "WayBillReturn": "master_waybill",
    "DeliveryReturn": "delivery",
    "SummaryReturn": "summary",
    "InvtCancelReturn": "inventory_cancel",
    "InvtRefundReturn": "refund",
    "RefundReturn": "refund",
    "InvtRefundDetailReturn": "refund",
}
# Receipts of applications to cancel or refund: their statuses judge the application, not the
# parcel, so they never become events.
_APPLICATION_RECEIPTS = frozenset({"inventory_cancel", "refund"})

# CEB field -> extra key, for the references every record keeps when present.
_REFERENCES = {
    "guid": "guid",
    "orderNo": "order_no",
    "logisticsNo": "logistics_no",
    "copNo": "cop_no",
    "coElNo": "co_el_no",
    "preNo": "pre_no",
    "invtNo": "invt_no",
    "billNo": "bill_no",
    "rkdNo": "rkd_no",
    "sumNo": "sum_no",
    "payNo": "pay_no",
    "payTransactionId": "pay_transaction_id",
    "customsCode": "customs_code",
    "portCode": "port_code",
    "ebpCode": "ebp_code",
    "ebcCode": "ebc_code",
    "agentCode": "agent_code",
    "logisticsCode": "logistics_code",
    "payCode": "pay_code",
    "appType": "app_type",
    "appStatus": "app_status",
}


class _RecordRejectedError(Exception):
    def __init__(self, reason: str, field: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.line = line


Fields = dict[str, tuple[str, int]]  # local name -> (text, line)


@dataclass(slots=True)
class _Rec:
    """One record element, flattened: the head's leaf fields plus its *List children."""

    msg: int
    name: str
    line: int
    raw: str
    head: Fields
    lists: list[Fields] = field(default_factory=list)

    @property
    def direction(self) -> str:
        return "export" if self.msg in EXPORT_MESSAGES else "import"

    def text(self, name: str, fields: Fields | None = None) -> str:
        return (fields if fields is not None else self.head).get(name, ("", 0))[0]

    def line_of(self, name: str, fields: Fields | None = None) -> int:
        return (fields if fields is not None else self.head).get(name, ("", self.line))[1]

    def req(self, name: str, fields: Fields | None = None) -> str:
        value = self.text(name, fields)
        if not value:
            raise _RecordRejectedError(
                f"{name} is missing or empty", name, self.line_of(name, fields)
            )
        return value

    def time(self, name: str, fields: Fields | None = None) -> datetime:
        value = self.req(name, fields)
        parsed = parse_time(value)
        if parsed is None:
            raise _RecordRejectedError(
                f"{name} {value!r} is not a CEB time (YYYYMMDDhhmmss[fff])",
                name,
                self.line_of(name, fields),
            )
        return parsed

    def decimal(self, name: str) -> Decimal | None:
        value = self.text(name)
        if not value:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise _RecordRejectedError(
                f"{name} {value!r} is not a number", name, self.line_of(name)
            )
        return number

    def currency(self, name: str, *, required: bool = False) -> str:
        value = self.req(name) if required else self.text(name)
        if not value:
            return ""
        try:
            return codes.currency_iso(value)
        except codes.CodeError as exc:
            raise _RecordRejectedError(f"{name}: {exc}", name, self.line_of(name)) from exc

    def country(self, name: str) -> str:
        value = self.text(name)
        if not value:
            return ""
        try:
            return codes.country_iso(value)
        except codes.CodeError as exc:
            raise _RecordRejectedError(f"{name}: {exc}", name, self.line_of(name)) from exc

    def references(self, fields: Fields | None = None) -> dict[str, object]:
        source = fields if fields is not None else self.head
        extra: dict[str, object] = {"message": f"CEB{self.msg}", "direction": self.direction}
        for ceb_name, key in _REFERENCES.items():
            value = source.get(ceb_name, ("", 0))[0]
            if value:
                extra[key] = value
        return extra

    def record(self, **kwargs: Any) -> Record:
        kwargs.setdefault("time_zone", TIME_ZONE)
        return Record(line=self.line, raw=self.raw, **kwargs)


def parse_time(value: str) -> datetime | None:
    """A naive China-time datetime from `YYYYMMDDhhmmss` or `YYYYMMDDhhmmssfff`, else None."""
    if not _TIME_RE.fullmatch(value):
        return None
    try:
        moment = datetime.strptime(value[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if len(value) == 17:
        moment = moment.replace(microsecond=int(value[14:]) * 1000)
    return moment


def _amount(number: Decimal | None) -> str:
    return "" if number is None else str(number)


# --- record handlers ---------------------------------------------------------------------------


def _order(rec: _Rec) -> list[ParseItem]:
    order_no = rec.req("orderNo")
    goods_value = rec.decimal("goodsValue")
    freight = rec.decimal("freight")
    discount = rec.decimal("discount")
    tax_total = rec.decimal("taxTotal")
    # The specification spells the field "acturalPaid" (sic); accept the corrected spelling too.
    paid_field = "acturalPaid" if rec.text("acturalPaid") else "actualPaid"
    actual_paid = rec.decimal(paid_field)
    amount = actual_paid
    if amount is None and goods_value is not None:
        # 实际支付金额 = 商品价格 + 运杂费 + 代扣税款 - 非现金抵扣金额 (the spec's definition).
        amount = goods_value + (freight or 0) + (tax_total or 0) - (discount or 0)
    extra = rec.references()
    extra.update(
        {
            "doc_type": "order",
            "order_no": order_no,
            "order_type": rec.text("orderType"),
            "amount": _amount(amount),
            "amount_source": paid_field if actual_paid is not None else "computed",
            "goods_value": _amount(goods_value),
            "freight": _amount(freight),
            "discount": _amount(discount),
            "tax_total": _amount(tax_total),
            "currency": rec.currency("currency", required=True),
            "consignee": rec.text("consignee"),
            "consignee_address": rec.text("consigneeAddress"),
            "buyer_name": rec.text("buyerName"),
            "item_count": len(rec.lists),
        }
    )
    return [
        rec.record(
            kind="customs_document",
            order_number=order_no,
            event_time=rec.time("appTime"),
            extra=extra,
        )
    ]


def _payment(rec: _Rec) -> list[ParseItem]:
    order_no = rec.req("orderNo")
    extra = rec.references()
    if rec.name == "Receipts":
        # Export receipt of payment (收款单): the seller's receipt, "charge" is the amount.
        amount = rec.decimal("charge")
        paid_at = rec.time("accountingDate") if rec.text("accountingDate") else None
        extra.update({"amount_field": "charge", "payer": ""})
    else:
        amount = rec.decimal("amountPaid")
        paid_at = rec.time("payTime") if rec.text("payTime") else None
        extra.update({"amount_field": "amountPaid", "payer": rec.text("payerName")})
    if amount is None:
        field_name = str(extra["amount_field"])
        raise _RecordRejectedError(
            f"{field_name} is missing or empty", field_name, rec.line_of(field_name)
        )
    extra.update(
        {
            "doc_type": "payment",
            "order_no": order_no,
            "amount": _amount(amount),
            "currency": rec.currency("currency", required=True),
            "pay_name": rec.text("payName"),
            "paid_at": paid_at.isoformat() if paid_at else "",
        }
    )
    return [
        rec.record(
            kind="customs_document",
            order_number=order_no,
            event_time=paid_at or rec.time("appTime"),
            extra=extra,
        )
    ]


def _waybill(rec: _Rec) -> list[ParseItem]:
    logistics_no = rec.req("logisticsNo")
    order_no = rec.text("orderNo")
    weight_field = "weight" if rec.text("weight") else "grossWeight"
    weight = rec.decimal(weight_field)  # the specification gives weights in kilograms
    data: dict[str, object] = {
        "logistics_no": logistics_no,
        "order_no": order_no,
        "logistics_name": rec.text("logisticsName"),
        "freight": _amount(rec.decimal("freight")),
        "insured_fee": _amount(rec.decimal("insuredFee")),
        "currency": rec.currency("currency", required=True),
        "weight_kg": _amount(weight),
        "pack_no": rec.text("packNo"),
        "goods_info": rec.text("goodsInfo"),
        "consignee": rec.text("consignee"),
        "consignee_address": rec.text("consigneeAddress"),
    }
    country = rec.country("country")  # not in the 2018/2022 waybill, read when a partner adds it
    when = rec.time("appTime")
    common: dict[str, Any] = {
        "tracking_number": logistics_no,
        "order_number": order_no,
        "event_time": when,
        "weight_kg": weight,
        "country": country,
        "carrier": rec.text("logisticsName"),
        "description": rec.text("goodsInfo"),
    }
    shipment_extra = rec.references() | data
    document_extra = rec.references() | data | {"doc_type": "waybill"}
    return [
        rec.record(kind="shipment", extra=shipment_extra, **common),
        rec.record(kind="customs_document", extra=document_extra, **common),
    ]


def _logistics_status(rec: _Rec) -> list[ParseItem]:
    logistics_no = rec.req("logisticsNo")
    status = rec.req("logisticsStatus")
    if status not in codes.LOGISTICS_STATUSES:
        raise _RecordRejectedError(
            f"unknown logisticsStatus {status!r} (the specification defines only S = signed for)",
            "logisticsStatus",
            rec.line_of("logisticsStatus"),
        )
    event_code, meaning = codes.LOGISTICS_STATUSES[status]
    return [
        rec.record(
            tracking_number=logistics_no,
            event_code=event_code,
            partner_code=status,
            event_time=rec.time("logisticsTime"),
            # Cross-border import parcels are delivered in mainland China by definition.
            country="CN" if rec.direction == "import" else "",
            carrier=rec.text("logisticsName"),
            description=meaning,
            extra=rec.references(),
        )
    ]


def _inventory(rec: _Rec) -> list[ParseItem]:
    logistics_no = rec.req("logisticsNo")
    order_no = rec.text("orderNo")
    extra = rec.references()
    extra.update(
        {
            "trade_mode": rec.text("tradeMode"),  # 9610 direct, 1210 bonded, 9710/9810 B2B export
            "ie_flag": rec.text("ieFlag"),
            "ie_date": rec.text("ieDate"),
            "voyage_no": rec.text("voyageNo"),
            "traf_mode": rec.text("trafMode"),
            "gross_weight_kg": _amount(rec.decimal("grossWeight")),
            "net_weight_kg": _amount(rec.decimal("netWeight")),
        }
    )
    if rec.direction == "import":
        extra["origin_country"] = rec.country("country")  # 起运国
        extra["currency"] = rec.currency("currency")
        event_code = "customs_import_submitted"
    else:
        extra["destination_country"] = rec.country("country")  # 运抵国
        extra["freight_currency"] = rec.currency("fCurrency")
        extra["insured_currency"] = rec.currency("iCurrency")
        event_code = "customs_export_submitted"
    common: dict[str, Any] = {
        "tracking_number": logistics_no,
        "order_number": order_no,
        "event_time": rec.time("appTime"),
        "weight_kg": rec.decimal("grossWeight"),
    }
    if rec.text("appStatus") == "1":
        # 暂存: saved at the e-port but not declared, so customs has not seen it yet.
        extra.update({"doc_type": "inventory", "draft": True})
        return [rec.record(kind="customs_document", extra=extra, **common)]
    return [
        rec.record(
            event_code=event_code,
            partner_code=f"CEB{rec.msg}",
            country="CN",
            description="跨境电商清单申报 cross-border inventory declared",
            extra=extra,
            **common,
        )
    ]


def _application(doc_type: str) -> Callable[[_Rec], list[ParseItem]]:
    """Cancel (撤销申请单) and refund (退货申请单) applications: documents, not parcel events."""

    def handle(rec: _Rec) -> list[ParseItem]:
        if not (rec.text("invtNo") or rec.text("copNo") or rec.text("logisticsNo")):
            raise _RecordRejectedError("invtNo is missing or empty", "invtNo", rec.line)
        extra = rec.references() | {"doc_type": doc_type, "reason": rec.text("reason")}
        return [
            rec.record(
                kind="customs_document",
                tracking_number=rec.text("logisticsNo"),
                order_number=rec.text("orderNo"),
                event_time=rec.time("appTime"),
                description=rec.text("reason"),
                extra=extra,
            )
        ]

    return handle


# Movement reports listing parcels: (event code, time field, description).
_LIST_EVENTS: dict[str, tuple[str, str, str]] = {
    "Arrival": ("arrived", "appTime", "运抵 arrived at the customs supervised site"),
    "Delivery": ("arrived", "appTime", "入库 delivered into the customs supervised site"),
    "Departure": ("departed", "leaveTime", "离境 departed the country"),
    "WayBill": ("customs_export_submitted", "appTime", "总分单 master waybill declared"),
}


def _listed(rec: _Rec) -> list[ParseItem]:
    event_code, time_field, description = _LIST_EVENTS[rec.name]
    when = rec.time(time_field)
    base = rec.references()
    base.update({"voyage_no": rec.text("voyageNo"), "traf_mode": rec.text("trafMode")})
    if not rec.lists:
        raise _RecordRejectedError(f"{rec.name}List is missing", f"{rec.name}List", rec.line)
    items: list[ParseItem] = []
    for entry in rec.lists:
        logistics_no = rec.text("logisticsNo", entry)
        if not logistics_no:
            line = rec.line_of("logisticsNo", entry)
            items.append(
                RecordError(line, rec.raw, "logisticsNo is missing or empty", "logisticsNo")
            )
            continue
        extra = base | {"logistics_no": logistics_no, "gnum": rec.text("gnum", entry)}
        if rec.text("totalPackageNo", entry):
            extra["total_package_no"] = rec.text("totalPackageNo", entry)
        items.append(
            rec.record(
                tracking_number=logistics_no,
                event_code=event_code,
                partner_code=f"CEB{rec.msg}",
                event_time=when,
                country="CN",
                carrier=rec.text("logisticsName"),
                description=description,
                extra=extra,
            )
        )
    return items


def _receipt(rec: _Rec) -> list[ParseItem]:
    status_text = rec.req("returnStatus")
    try:
        status = codes.return_status(status_text)
    except codes.CodeError as exc:
        raise _RecordRejectedError(str(exc), "returnStatus", rec.line_of("returnStatus")) from exc
    when = rec.time("returnTime")
    info = rec.text("returnInfo")
    receipt_for = _RECEIPT_FOR.get(rec.name, rec.name.removesuffix("Return").lower())
    extra = rec.references()
    # Which reference identifies the shipment: a logisticsNo or orderNo when the receipt has one;
    # otherwise the declaration's own numbers, which the normalizer resolves through the earlier
    # message (e.g. a 622 carries only copNo/preNo/invtNo of its 621).
    match_by = [
        key
        for key in ("logistics_no", "order_no", "invt_no", "cop_no", "pre_no", "pay_transaction_id")
        if key in extra
    ]
    extra.update(
        {
            "receipt_for": receipt_for,
            "return_status": status_text,
            "return_status_meaning": status.meaning,
            "return_info": info,
            "match_by": match_by,
        }
    )
    if rec.text("logisticsStatus"):
        extra["logistics_status"] = rec.text("logisticsStatus")
    event_code = status.export_code if rec.direction == "export" else status.import_code
    common: dict[str, Any] = {
        "tracking_number": rec.text("logisticsNo"),
        "order_number": rec.text("orderNo"),
        "event_time": when,
        "partner_code": status_text,
        "description": info,
    }
    if receipt_for in _APPLICATION_RECEIPTS or not event_code:
        extra["doc_type"] = (
            f"{receipt_for}_receipt" if receipt_for in _APPLICATION_RECEIPTS else "receipt"
        )
        return [rec.record(kind="customs_document", extra=extra, **common)]
    return [rec.record(event_code=event_code, country="CN", extra=extra, **common)]


_HANDLERS: dict[str, Callable[[_Rec], list[ParseItem]]] = {
    "Order": _order,
    "Payment": _payment,
    "Receipts": _payment,
    "Logistics": _waybill,
    "LogisticsStatus": _logistics_status,
    "Inventory": _inventory,
    "InvtCancel": _application("inventory_cancel"),
    "InvtRefund": _application("refund"),
    "Arrival": _listed,
    "Delivery": _listed,
    "Departure": _listed,
    "WayBill": _listed,
}


def _handle(rec: _Rec) -> list[ParseItem]:
    if rec.msg not in IMPORT_MESSAGES and rec.msg not in EXPORT_MESSAGES:
        raise _RecordRejectedError(f"unsupported message CEB{rec.msg}", rec.name, rec.line)
    handler = _HANDLERS.get(rec.name)
    if handler is None and rec.name.endswith("Return"):
        handler = _receipt
    if handler is None:
        raise _RecordRejectedError(
            f"unsupported message CEB{rec.msg} ({rec.name})", rec.name, rec.line
        )
    return handler(rec)


# --- streaming XML ----------------------------------------------------------------------------


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


class _Collector:
    """Parser target: builds each root child, remembers where it started, queues it at its end."""

    def __init__(self) -> None:
        self.parser: DefusedXMLParser | None = None
        self.builder = TreeBuilder()
        self.depth = 0
        self.root: Element | None = None
        self.msg = 0
        self.lines: dict[Element, int] = {}
        self.record_start = 0
        self.record_line = 0
        # (element, line, first byte, byte index of its end tag)
        self.done: list[tuple[Element, int, int, int]] = []

    def _position(self) -> tuple[int, int]:
        assert self.parser is not None
        expat = self.parser.parser
        return expat.CurrentLineNumber, expat.CurrentByteIndex

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = self.builder.start(tag, attrs)
        self.depth += 1
        line, index = self._position()
        if self.depth == 1:
            namespace, name = _local(tag)
            match = _ROOT_RE.fullmatch(name)
            if namespace != CEB_NS or match is None:
                raise FormatError(
                    f"root element {name!r} (namespace {namespace!r}) is not a CEB message "
                    f"in {CEB_NS}",
                    line=line,
                    field=name,
                )
            self.root = element
            self.msg = int(match.group(1))
        else:
            if self.depth == 2:
                self.record_start, self.record_line = index, line
            self.lines[element] = line
        return element

    def end(self, tag: str) -> Element:
        element = self.builder.end(tag)
        if self.depth == 2 and self.root is not None:
            _, index = self._position()
            self.done.append((element, self.record_line, self.record_start, index))
            self.root.remove(element)  # records are handed on one by one, never kept
        self.depth -= 1
        return element

    def data(self, text: str) -> None:
        self.builder.data(text)

    def close(self) -> Element:
        return self.builder.close()


def _refuse_dtd(*_args: object) -> None:
    raise FormatError(
        "DTD (<!DOCTYPE ...>) refused: CEB messages never carry a DTD", field="DOCTYPE"
    )


def _defused_reason(exc: DefusedXmlException) -> str:
    name = getattr(exc, "name", "")
    if getattr(exc, "sysid", None) or getattr(exc, "pubid", None):
        return f"external entity {name!r} refused (XML external entity / XXE protection)"
    if name:
        return f"entity declaration {name!r} refused (entity expansion / billion laughs protection)"
    return f"refused by XML protection: {exc}"


def declared_encoding(head: bytes) -> str | None:
    """The encoding the XML declaration names, or None when there is no declaration."""
    match = _DECL_ENCODING_RE.search(head[:512])
    if not match:
        return None
    declared = match.group(1).decode("ascii").lower()
    if declared in {"gbk", "gb2312", "cp936", "gb18030"}:
        return "gb18030"  # a superset of GBK and GB2312: partners mislabel all three
    return declared


def _encoding_of(head: bytes, options: ParseOptions) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return declared_encoding(head) or options.encoding.lower()


def _chunks(stream: IO[bytes], options: ParseOptions) -> Iterator[bytes]:
    """The payload as UTF-8 (or ASCII) chunks: other encodings are transcoded, since expat reads
    only a few encodings natively and no multi-byte Chinese one."""
    first = stream.read(_CHUNK)
    if not first:
        raise FormatError("empty payload: no CEB message")
    encoding = _encoding_of(first, options)
    try:
        codec = codecs.lookup(encoding)
    except LookupError as exc:
        raise FormatError(f"unknown encoding {encoding!r}", line=1, field="encoding") from exc
    # A UTF-8 BOM wins over the declaration (XML 1.0 appendix F), as when the ingest pipeline
    # hands over a UTF-16 payload transcoded to UTF-8: the declaration is rewritten below.
    relabel = first.startswith(codecs.BOM_UTF8) and declared_encoding(first) not in (None, "utf-8")
    if codec.name in {"utf-8", "ascii"} and not relabel:
        yield first
        while chunk := stream.read(_CHUNK):
            yield chunk
        return
    decoder = codec.incrementaldecoder("strict")
    chunk, first_chunk = first, True
    while True:
        final = not chunk
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise FormatError(f"payload is not valid {codec.name}: {exc.reason}") from exc
        if first_chunk:
            # The bytes handed to expat are UTF-8 now, so the declaration must say so.
            text = re.sub(
                r"""^\ufeff?(<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""",
                r"\g<1>UTF-8\g<2>",
                text.lstrip("\ufeff"),
            )
            first_chunk = False
        if text:
            yield text.encode("utf-8")
        if final:
            return
        chunk = stream.read(_CHUNK)


def _flatten(element: Element, lines: Mapping[Element, int], default: int) -> Fields:
    fields: Fields = {}
    for child in element:
        _, name = _local(child.tag)
        if len(child) == 0 and name not in fields:
            fields[name] = ((child.text or "").strip(), lines.get(child, default))
    return fields


def _to_rec(element: Element, msg: int, line: int, raw: str, lines: Mapping[Element, int]) -> _Rec:
    _, name = _local(element.tag)
    head_element = element
    lists: list[Fields] = []
    for child in element:
        _, child_name = _local(child.tag)
        if child_name.endswith("Head") and len(child):
            head_element = child
        elif child_name.endswith("List"):
            lists.append(_flatten(child, lines, lines.get(child, line)))
    return _Rec(
        msg=msg,
        name=name,
        line=line,
        raw=raw,
        head=_flatten(head_element, lines, line),
        lists=lists,
    )


def parse(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Records of one CEB message; FormatError when the document itself is unusable.

    1. Feed the payload in chunks to a defused expat parser (DTDs and entities refused).
    2. Each completed root child is cut from the tree with its raw text and line number.
    3. Envelope parts (BaseTransfer, signature) are skipped; records go to their handler, and a
       handler's rejection becomes a RecordError while parsing goes on.
    """
    collector = _Collector()
    parser = DefusedXMLParser(
        target=collector, forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    collector.parser = parser
    # Entity declarations are refused by defusedxml as they are read; any DTD left is refused
    # when it closes, so the reason names the attack when there is one.
    parser.parser.EndDoctypeDeclHandler = _refuse_dtd
    buffer = bytearray()
    base = 0  # absolute byte offset of buffer[0]

    def drain() -> Iterator[ParseItem]:
        nonlocal buffer, base
        while collector.done:
            element, line, start, end_index = collector.done.pop(0)
            stop = buffer.find(b">", end_index - base) + 1 or len(buffer)
            raw = bytes(buffer[start - base : stop])[: _RAW_MAX * 4]
            raw_text = raw.decode("utf-8", errors="replace")[:_RAW_MAX]
            del buffer[:stop]
            base += stop
            lines = collector.lines
            namespace, name = _local(element.tag)
            try:
                if namespace != CEB_NS or name in _NOT_RECORDS:
                    continue
                rec = _to_rec(element, collector.msg, line, raw_text, lines)
                try:
                    yield from _handle(rec)
                except _RecordRejectedError as exc:
                    yield RecordError(exc.line or line, raw_text, exc.reason, exc.field)
            finally:
                for node in element.iter():
                    lines.pop(node, None)

    def fail(exc: Exception) -> FormatError:
        if isinstance(exc, FormatError):
            return exc
        if isinstance(exc, DefusedXmlException):
            return FormatError(_defused_reason(exc), line=_line(parser), field="DOCTYPE")
        if isinstance(exc, ParseError):
            position = getattr(exc, "position", (0, 0))
            return FormatError(f"malformed XML: {exc}", line=position[0])
        return FormatError(f"malformed XML: {exc}", line=_line(parser))

    # DefusedXmlException is a ValueError; expat raises LookupError or ValueError for a declared
    # encoding it cannot read (e.g. a UTF-8 BOM followed by encoding="Shift_JIS").
    for chunk in _chunks(stream, options):
        buffer += chunk
        try:
            parser.feed(chunk)
        except (FormatError, ParseError, LookupError, ValueError) as exc:
            yield from drain()
            raise fail(exc) from exc
        yield from drain()
    try:
        parser.close()
    except (FormatError, ParseError, LookupError, ValueError) as exc:
        yield from drain()
        raise fail(exc) from exc
    yield from drain()
    if collector.root is None:
        raise FormatError("no CEB message element found")


def _line(parser: DefusedXMLParser) -> int:
    try:
        return int(parser.parser.CurrentLineNumber)
    except AttributeError:
        return 0


# --- three-document match (三单对碰) -------------------------------------------------------------


def _decimal_or_none(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _clean(value: object) -> str:
    return "".join(str(value or "").split())


def match_documents(
    order: Mapping[str, object] | None,
    payment: Mapping[str, object] | None,
    waybill: Mapping[str, object] | None,
) -> tuple[str, list[str]]:
    """Customs' three-document match over the `extra` of an order, a payment and a waybill.

    Returns ("missing", [names]) when a document is absent, ("mismatch", [fields]) when they
    disagree, else ("matched", []). Compared, as customs compares them:
    - order_no: the same on all three documents;
    - amount: the payment's amountPaid (411; `charge` of an export 403) against the order's
      acturalPaid, the amount actually paid (goodsValue + freight + taxTotal - discount when the
      order omits it); a payment must cover the order exactly;
    - currency: the payment's and the order's currency, when both are given;
    - consignee: the order's consignee against the waybill's consignee (whitespace ignored);
    - pay_transaction_id: the order's payTransactionId against the payment's, when both are given.
    """
    missing = [
        name
        for name, document in (("order", order), ("payment", payment), ("waybill", waybill))
        if document is None
    ]
    if order is None or payment is None or waybill is None:
        return "missing", missing
    mismatched: list[str] = []
    numbers = {_clean(doc.get("order_no")) for doc in (order, payment, waybill)}
    if len(numbers) != 1 or "" in numbers:
        mismatched.append("order_no")
    order_amount = _decimal_or_none(order.get("amount"))
    paid = _decimal_or_none(payment.get("amount"))
    if order_amount is None or paid is None or order_amount != paid:
        mismatched.append("amount")
    order_currency, paid_currency = order.get("currency"), payment.get("currency")
    if order_currency and paid_currency and order_currency != paid_currency:
        mismatched.append("currency")
    if _clean(order.get("consignee")) != _clean(waybill.get("consignee")):
        mismatched.append("consignee")
    order_txn, paid_txn = order.get("pay_transaction_id"), payment.get("pay_transaction_id")
    if order_txn and paid_txn and _clean(order_txn) != _clean(paid_txn):
        mismatched.append("pay_transaction_id")
    if mismatched:
        return "mismatch", mismatched
    return "matched", []
