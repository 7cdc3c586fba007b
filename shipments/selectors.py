"""Reads the API and admin need; every shop-facing read is scoped to the shop here."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from shipments.models import Shipment, Shop, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from warehouses.normalize import tracking_number_clean


def shipment_get_for_shop(*, shop: Shop, tracking_number: str) -> Shipment | None:
    """The shop's shipment (with the event that set its status) or None: another shop's parcel
    is indistinguishable from one that does not exist."""
    return (
        Shipment.objects.select_related("status_event", "estimate")
        .filter(shop=shop, tracking_number=tracking_number_clean(tracking_number))
        .first()
    )


def shipment_list_for_shop(
    *,
    shop: Shop,
    status: str | None = None,
    stage: str | None = None,
    destination_country: str | None = None,
    order_number: str | None = None,
    updated_since: datetime | None = None,
    archived: bool | None = None,
) -> QuerySet[Shipment]:
    qs = Shipment.objects.filter(shop=shop).select_related("status_event", "estimate")
    if status:
        qs = qs.filter(status=status)
    if stage is not None:
        qs = qs.filter(stage=stage)
    if destination_country:
        qs = qs.filter(destination_country=destination_country.upper())
    if order_number:
        qs = qs.filter(order_number=order_number)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    return qs


def webhook_endpoint_get_for_shop(*, shop: Shop, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(shop=shop, pk=endpoint_id).first()


def webhook_endpoints_for_shop(*, shop: Shop) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(shop=shop).order_by("id")


def webhook_attempts_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookAttempt]:
    return (
        WebhookAttempt.objects.filter(endpoint=endpoint)
        .select_related("delivery")
        .order_by("-attempted_at", "-id")
    )


def webhook_deliveries_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")


def shipment_get_public(*, tracking_number: str) -> Shipment | None:
    """The buyer tracking page's lookup: by tracking number alone, with its estimate (one query).
    Callers show only what a buyer may see (no shop, order number or raw records)."""
    cleaned = tracking_number_clean(tracking_number)
    if not cleaned:
        return None
    return Shipment.objects.select_related("estimate").filter(tracking_number=cleaned).first()
