"""Claiming a parcel a feed reported before its shop registered it (docs/claiming.md).

A feed's parcel carries its history, the order number the feed gave and free-text descriptions:
only its owner may read them. A shop proves it owns the parcel by registering the order number
the feed carries for it, or by an operator's assignment of the shop to a warehouse the parcel's
events came from (Shop.warehouses). Without proof the shop is attached all the same (the parcel
is its, as far as anyone knows), but it sees only events that occurred from its registration on
and its own order number: Shipment.claim_limited_since and claim_order_number. A proven claim
displaces an unproven one; every claim on a feed's parcel is kept as a ShipmentClaim row for the
operator.

The writes run inside shipment_register's transaction, on the parcel's locked row; the reads
(what a shop may see of its parcel) are the helpers at the end, one copy of the rule for the API
and the webhooks' SQL (shipments/recording).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from django.db.models import Case, F, Q, When

from shipments.models import (
    Shipment,
    ShipmentClaim,
    Shop,
    TrackingEvent,
    WebhookDelivery,
)

Proof = ShipmentClaim.Proof
Outcome = ShipmentClaim.Outcome

# The settle() outcomes shipment_register acts on, besides the ShipmentClaim outcomes.
EXISTING = "existing"
UPGRADED = "upgraded"


def claim_proof(*, shop: Shop, shipment: Shipment, order_number: str) -> str:
    """What proves the shop owns a parcel a feed reported (Proof.NONE when nothing does)."""
    order_number = order_number.strip()
    if order_number and order_number == shipment.order_number:
        return Proof.ORDER_NUMBER
    event_warehouses = TrackingEvent.objects.filter(
        shipment_id=shipment.pk, warehouse_id__isnull=False
    ).values("warehouse_id")
    assigned = Shop.warehouses.through.objects.filter(
        shop_id=shop.pk, warehouse_id__in=event_warehouses
    )
    return Proof.WAREHOUSE if assigned.exists() else Proof.NONE


def _record(
    *, shipment: Shipment, shop_id: int, proof: str, outcome: str, order_number: str, now: datetime
) -> None:
    values = {
        "proof": proof,
        "outcome": outcome,
        "order_number": order_number[:64],
        "updated_at": now,
    }
    ShipmentClaim.objects.update_or_create(
        shipment=shipment,
        shop_id=shop_id,
        defaults=values,
        create_defaults={**values, "created_at": now},
    )


def _displace(*, shipment: Shipment, now: datetime) -> None:
    """The unproven holder loses the parcel: its claim is kept for the operator and what its
    endpoints were still to be told about the parcel is not sent."""
    assert shipment.shop_id is not None
    ShipmentClaim.objects.filter(shipment=shipment, shop_id=shipment.shop_id).update(
        outcome=Outcome.DISPLACED, updated_at=now
    )
    # Failed, and never replayed: a replay sends only parcels still the endpoint's shop's
    # (shipments/webhooks.py). Not deleted: a relay may be sending one right now.
    WebhookDelivery.objects.filter(
        shipment=shipment,
        endpoint__shop_id=shipment.shop_id,
        state=WebhookDelivery.State.PENDING,
    ).update(
        state=WebhookDelivery.State.FAILED,
        last_error="not sent: the shop's claim on the parcel was displaced by a proven one",
    )
    # The metadata was the displaced shop's own: not the new owner's to read.
    shipment.metadata = {}


def claim_settle(*, shop: Shop, shipment: Shipment, order_number: str, now: datetime) -> str:
    """Decide a registration of a parcel that already exists (its row locked by the caller).

    Sets the shipment's shop and claim fields in memory (the caller saves them) and records the
    claim. Returns EXISTING, UPGRADED (the holder proved an unproven claim), or the
    ShipmentClaim outcome: ATTACHED, LIMITED or REFUSED (another shop holds it).
    """
    limited = shipment.claim_limited_since is not None
    if shipment.shop_id == shop.pk and not limited:
        return EXISTING
    if shipment.shop_id not in (None, shop.pk) and not limited:
        proof = claim_proof(shop=shop, shipment=shipment, order_number=order_number)
        _record(
            shipment=shipment,
            shop_id=shop.pk,
            proof=proof,
            outcome=Outcome.REFUSED,
            order_number=order_number,
            now=now,
        )
        return Outcome.REFUSED
    proof = claim_proof(shop=shop, shipment=shipment, order_number=order_number)
    if shipment.shop_id == shop.pk:
        if proof == Proof.NONE:
            return EXISTING
        _record(
            shipment=shipment,
            shop_id=shop.pk,
            proof=proof,
            outcome=Outcome.ATTACHED,
            order_number=order_number or shipment.claim_order_number,
            now=now,
        )
        claim_prove(shipment=shipment)
        return UPGRADED
    if shipment.shop_id is not None and proof == Proof.NONE:
        # An unproven claim stands until a proven one comes: first come, first attached.
        _record(
            shipment=shipment,
            shop_id=shop.pk,
            proof=proof,
            outcome=Outcome.REFUSED,
            order_number=order_number,
            now=now,
        )
        return Outcome.REFUSED
    if shipment.shop_id is not None:
        _displace(shipment=shipment, now=now)
    outcome = Outcome.ATTACHED if proof != Proof.NONE else Outcome.LIMITED
    _record(
        shipment=shipment,
        shop_id=shop.pk,
        proof=proof,
        outcome=outcome,
        order_number=order_number,
        now=now,
    )
    shipment.shop = shop
    shipment.claim_limited_since = now if outcome == Outcome.LIMITED else None
    shipment.claim_order_number = order_number if outcome == Outcome.LIMITED else ""
    return outcome


def claim_prove(*, shipment: Shipment) -> None:
    """Lift the limit (in memory; the caller saves claim fields and order_number)."""
    if not shipment.order_number:
        shipment.order_number = shipment.claim_order_number
    shipment.claim_limited_since = None
    shipment.claim_order_number = ""


CLAIM_FIELDS = ["shop", "claim_limited_since", "claim_order_number", "order_number", "metadata"]


# --- what a shop sees of its parcel -----------------------------------------------------------

T = TypeVar("T")


def shop_order_number(shipment: Shipment) -> str:
    """The order number the shop may read: its own while its claim is unproven."""
    if shipment.claim_limited_since is not None:
        return shipment.claim_order_number
    return shipment.order_number


def shop_may_see(shipment: Shipment, occurred_at: datetime | None) -> bool:
    """Whether the shop may see an event (or a time) of its parcel."""
    since = shipment.claim_limited_since
    return since is None or (occurred_at is not None and occurred_at >= since)


def shop_visible(shipment: Shipment, entries: Sequence[T], when: str = "occurred_at") -> list[T]:
    """The entries (timeline rows, events) the shop may see, in their order."""
    if shipment.claim_limited_since is None:
        return list(entries)
    return [e for e in entries if shop_may_see(shipment, getattr(e, when))]


def order_number_filter(order_number: str) -> Q:
    """Shipments whose shop registered or may read this order number."""
    return Q(claim_limited_since__isnull=True, order_number=order_number) | Q(
        claim_limited_since__isnull=False, claim_order_number=order_number
    )


# The same rules as ORM expressions, for reads that fetch values instead of models (exports):
# shop_order_number, and shop_may_see of a time field (None when the shop may not see it).


def shop_order_number_expression() -> Case:
    return Case(
        When(claim_limited_since__isnull=False, then=F("claim_order_number")),
        default=F("order_number"),
    )


def shop_may_see_q(at_field: str) -> Q:
    return Q(claim_limited_since__isnull=True) | Q(**{f"{at_field}__gte": F("claim_limited_since")})


# The same rule in the webhooks' SQL (`s` is the shipment): the order number a shop may read.
SHOP_ORDER_NUMBER_SQL = (
    "CASE WHEN s.claim_limited_since IS NULL THEN s.order_number ELSE s.claim_order_number END"
)
