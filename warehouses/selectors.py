"""Queries the API and the admin need on the sources side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q

from warehouses.models import CustomsMatch

if TYPE_CHECKING:
    from shipments.models import Shipment


def shipment_customs_documents(*, shipment: Shipment) -> dict[str, Any] | None:
    """The three-document match (三单对碰) of a shipment's customs order, or None when customs
    has seen no order, payment or waybill for it.

    `result` is "matched", "missing" (`missing` names the absent documents: order, payment,
    waybill) or "mismatch" (`mismatched` names the fields that disagree: order_no, amount,
    currency, consignee, pay_transaction_id).
    """
    condition = Q(shipment_id=shipment.pk) | Q(logistics_no=shipment.tracking_number)
    if shipment.order_number:
        condition |= Q(order_no=shipment.order_number)
    match = CustomsMatch.objects.filter(condition).order_by("-checked_at").first()
    if match is None:
        return None
    return {
        "order_no": match.order_no,
        "result": match.result,
        "missing": list(match.missing),
        "mismatched": list(match.mismatched),
    }
