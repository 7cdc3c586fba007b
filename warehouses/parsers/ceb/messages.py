"""CEB message records -> hub records: one handler per record element (Order, Payment, Logistics,
LogisticsStatus, Inventory, cancel/refund applications, movement lists, `*Return` receipts).
The package docstring says what each becomes; `codes` holds every code decision."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from warehouses.parsers.base import ParseItem, RecordError, RecordRejected
from warehouses.parsers.ceb import codes
from warehouses.parsers.ceb.record import EXPORT_MESSAGES, IMPORT_MESSAGES, Rec

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


def _amount(number: Decimal | None) -> str:
    return "" if number is None else str(number)


def _order(rec: Rec) -> list[ParseItem]:
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


def _payment(rec: Rec) -> list[ParseItem]:
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
        raise RecordRejected(
            f"{field_name} is missing or empty", field=field_name, line=rec.line_of(field_name)
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


def _waybill(rec: Rec) -> list[ParseItem]:
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


def _logistics_status(rec: Rec) -> list[ParseItem]:
    logistics_no = rec.req("logisticsNo")
    status = rec.req("logisticsStatus")
    if status not in codes.LOGISTICS_STATUSES:
        raise RecordRejected(
            f"unknown logisticsStatus {status!r} (the specification defines only S = signed for)",
            field="logisticsStatus",
            line=rec.line_of("logisticsStatus"),
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


def _inventory(rec: Rec) -> list[ParseItem]:
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


def _application(doc_type: str) -> Callable[[Rec], list[ParseItem]]:
    """Cancel (撤销申请单) and refund (退货申请单) applications: documents, not parcel events."""

    def handle(rec: Rec) -> list[ParseItem]:
        if not (rec.text("invtNo") or rec.text("copNo") or rec.text("logisticsNo")):
            raise RecordRejected("invtNo is missing or empty", field="invtNo", line=rec.line)
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


def _listed(rec: Rec) -> list[ParseItem]:
    event_code, time_field, description = _LIST_EVENTS[rec.name]
    when = rec.time(time_field)
    base = rec.references()
    base.update({"voyage_no": rec.text("voyageNo"), "traf_mode": rec.text("trafMode")})
    if not rec.lists:
        raise RecordRejected(f"{rec.name}List is missing", field=f"{rec.name}List", line=rec.line)
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


def _receipt(rec: Rec) -> list[ParseItem]:
    status_text = rec.req("returnStatus")
    try:
        status = codes.return_status(status_text)
    except codes.CodeError as exc:
        raise RecordRejected(
            str(exc), field="returnStatus", line=rec.line_of("returnStatus")
        ) from exc
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


_HANDLERS: dict[str, Callable[[Rec], list[ParseItem]]] = {
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


def handle_record(rec: Rec) -> list[ParseItem]:
    if rec.msg not in IMPORT_MESSAGES and rec.msg not in EXPORT_MESSAGES:
        raise RecordRejected(f"unsupported message CEB{rec.msg}", field=rec.name, line=rec.line)
    handler = _HANDLERS.get(rec.name)
    if handler is None and rec.name.endswith("Return"):
        handler = _receipt
    if handler is None:
        raise RecordRejected(
            f"unsupported message CEB{rec.msg} ({rec.name})", field=rec.name, line=rec.line
        )
    return handler(rec)
