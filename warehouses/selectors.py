"""Queries the API and the admin need on the sources side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Max, Min, Q

from warehouses.models import CustomsMatch, RejectedRecord

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


@dataclass(frozen=True)
class UnknownCode:
    code: str  # as the feed's code mapping writes it
    count: int  # rejects not replayed yet
    last_run_id: int  # the most recent run that rejected it
    last_seen: datetime
    reason: str  # one of its reasons, for the operator to read


def feed_unknown_codes(*, feed_id: int) -> list[UnknownCode]:
    """The partner codes this feed's records were rejected for and that no replay has dealt
    with yet, most frequent first (one grouped query on RejectedRecord.unknown_code)."""
    rows = (
        RejectedRecord.objects.filter(run__feed_id=feed_id, replayed_in__isnull=True)
        .exclude(unknown_code="")
        .values("unknown_code")
        .annotate(
            count=Count("id"),
            last_run_id=Max("run_id"),
            last_seen=Max("created_at"),
            reason=Min("reason"),
        )
        .order_by("-count", "unknown_code")
    )
    return [
        UnknownCode(
            code=row["unknown_code"],
            count=row["count"],
            last_run_id=row["last_run_id"],
            last_seen=row["last_seen"],
            reason=row["reason"],
        )
        for row in rows
    ]
