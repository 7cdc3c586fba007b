"""Customs' three-document match (三单对碰) over the order, the payment and the waybill."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation


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
