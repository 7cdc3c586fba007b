"""Writes on the domain side that are not the bulk event path (shipments.recording):
shops and keys, registration (single and bulk), updates, archive, idempotency records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from shipments import claiming
from shipments.identifiers import tracking_number_clean
from shipments.models import IdempotencyRecord, Shipment, ShipmentClaim, Shop, ShopAPIKey


def shop_create(*, name: str, slug: str = "") -> Shop:
    base = slugify(slug or name)[:70] or "shop"
    candidate, n = base, 1
    while Shop.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Shop.objects.create(name=name, slug=candidate)


@transaction.atomic
def shop_api_key_create(*, shop: Shop, name: str = "default") -> tuple[ShopAPIKey, str]:
    """A new key for the shop: the plain key is returned once and only its hash is stored."""
    api_key, key = ShopAPIKey.objects.create_key(shop=shop, name=name[:50])
    assert isinstance(api_key, ShopAPIKey)
    return api_key, key


class TrackingNumberUnavailable(Exception):
    """The tracking number belongs to another shop (nothing about that shop is revealed)."""


@dataclass(frozen=True, slots=True)
class Registration:
    shipment: Shipment
    # created: new row; attached: a feed had created it first and the shop proved it owns it;
    # limited: attached without proof, it sees events from its registration on
    # (docs/claiming.md); existing: the shop's already
    outcome: str

    @property
    def is_new_for_shop(self) -> bool:
        return self.outcome in ("created", "attached", "limited")


# Fields a shop may set at registration; a feed never overwrites them afterwards (the recorder
# only fills blanks) and registration only fills what a feed left blank.
_REGISTER_FIELDS = (
    "order_number",
    "carrier",
    "origin_country",
    "destination_country",
    "weight_kg",
    "declared_value",
    "currency",
)


def shipment_register(
    *,
    shop: Shop,
    tracking_number: str,
    order_number: str = "",
    carrier: str = "",
    origin_country: str = "",
    destination_country: str = "",
    declared_value: Decimal | None = None,
    currency: str = "",
    weight_kg: Decimal | None = None,
    metadata: dict[str, Any] | None = None,
) -> Registration:
    """Register a shipment for a shop; idempotent on (shop, tracking number).

    1. Insert it, or find the existing row (a concurrent insert is caught by the unique index).
    2. An existing row is locked and its claim settled (shipments.claiming, docs/claiming.md): a
       feed's parcel is attached, with its history if the shop proves it owns it; a row of this
       shop is returned as is (an unproven claim proven now sees its history); another shop's is
       refused, unless its claim is unproven and this one is proven. A refusal is recorded for
       the operator before TrackingNumberUnavailable is raised.
    """
    number = tracking_number_clean(tracking_number)
    values: dict[str, Any] = {
        "order_number": order_number,
        "carrier": carrier,
        "origin_country": origin_country.upper(),
        "destination_country": destination_country.upper(),
        "declared_value": declared_value,
        "currency": currency.upper(),
        "weight_kg": weight_kg,
    }
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                shipment = Shipment.objects.create(
                    tracking_number=number,
                    shop=shop,
                    metadata=metadata or {},
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            return Registration(shipment, "created")
        except IntegrityError:
            pass
        shipment = Shipment.objects.select_for_update().get(tracking_number=number)
        outcome = claiming.claim_settle(
            shop=shop, shipment=shipment, order_number=order_number, now=now
        )
        if outcome in (claiming.EXISTING, claiming.UPGRADED):
            if outcome == claiming.UPGRADED:
                shipment.updated_at = now
                shipment.save(update_fields=[*claiming.CLAIM_FIELDS, "updated_at"])
            return Registration(shipment, "existing")
        if outcome != ShipmentClaim.Outcome.REFUSED:
            _attach(shipment, values, metadata, now, limited=outcome == "limited")
            return Registration(shipment, outcome)
    raise TrackingNumberUnavailable(number)


def _attach(
    shipment: Shipment,
    values: dict[str, Any],
    metadata: dict[str, Any] | None,
    now: datetime,
    *,
    limited: bool,
) -> None:
    """Fill what the feed left blank with the registration's values and save the claim. An
    unproven claim's order number stays apart (claim_order_number): the feed's is not its."""
    changed = [*claiming.CLAIM_FIELDS, "updated_at"]
    shipment.updated_at = now
    for name in _REGISTER_FIELDS:
        if limited and name == "order_number":
            continue
        if getattr(shipment, name) in ("", None) and values[name] not in ("", None):
            setattr(shipment, name, values[name])
            changed.append(name)
    if metadata:
        shipment.metadata = {**metadata, **(shipment.metadata or {})}
    shipment.save(update_fields=list(dict.fromkeys(changed)))


def shipment_claim_approve(*, shipment_id: int) -> bool:
    """An operator's proof: the holder of an unproven claim sees the whole history. False when
    the claim was no longer unproven (proven or displaced meanwhile)."""
    now = timezone.now()
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if shipment.claim_limited_since is None or shipment.shop_id is None:
            return False
        ShipmentClaim.objects.filter(shipment=shipment, shop_id=shipment.shop_id).update(
            proof=ShipmentClaim.Proof.OPERATOR,
            outcome=ShipmentClaim.Outcome.ATTACHED,
            updated_at=now,
        )
        claiming.claim_prove(shipment=shipment)
        shipment.updated_at = now
        shipment.save(update_fields=[*claiming.CLAIM_FIELDS, "updated_at"])
    return True


def shipment_update(
    *,
    shipment: Shipment,
    metadata: dict[str, Any] | None = None,
    order_number: str | None = None,
) -> Shipment:
    """A shop's own fields: metadata is replaced as a whole, the order number set."""
    fields = ["updated_at"]
    if metadata is not None:
        shipment.metadata = metadata
        fields.append("metadata")
    if order_number is not None and shipment.claim_limited_since is not None:
        # An unproven claim's own number: the feed's stays as the feed gave it.
        shipment.claim_order_number = order_number
        fields.append("claim_order_number")
    elif order_number is not None:
        shipment.order_number = order_number
        fields.append("order_number")
    shipment.updated_at = timezone.now()
    shipment.save(update_fields=fields)
    return shipment


def shipment_archive(*, shipment: Shipment) -> Shipment:
    """Stop tracking: no more webhooks for it; it stays readable. Archiving twice is a no-op."""
    if shipment.archived_at is None:
        now = timezone.now()
        Shipment.objects.filter(pk=shipment.pk, archived_at__isnull=True).update(
            archived_at=now, updated_at=now
        )
        shipment.refresh_from_db(fields=["archived_at", "updated_at"])
    return shipment


# --- Idempotency-Key --------------------------------------------------------------------------


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def idempotency_lookup(*, shop: Shop, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(shop=shop, key=key[:255]).first()


def idempotency_store(
    *, shop: Shop, key: str, fingerprint: str, status_code: int, body: Any
) -> IdempotencyRecord:
    """Keep the first response; if a concurrent request stored one first, that one wins."""
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                shop=shop,
                key=key[:255],
                fingerprint=fingerprint,
                status_code=status_code,
                body=json.loads(json.dumps(body, default=str)),
            )
    except IntegrityError:
        return IdempotencyRecord.objects.get(shop=shop, key=key[:255])


def idempotency_prune(*, older_than: timedelta = timedelta(hours=24)) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
