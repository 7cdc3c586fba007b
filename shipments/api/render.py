"""Plain-dict output of the shops' API (documented by the output serializers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shipments.claiming import shop_may_see, shop_order_number, shop_visible
from shipments.event_bounds import status_event_of
from shipments.models import (
    Shipment,
    ShipmentEstimate,
    ShopNotificationSettings,
    TrackingEvent,
    WebhookAttempt,
    WebhookEndpoint,
)
from shipments.readers.timeline import TimelineEntry, milestones


def dt(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _event_ref(event: TrackingEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "id": event.pk,
        "code": event.code,
        "occurred_at": dt(event.occurred_at),
        "location_name": event.location_name,
        "location_code": event.location_code,
        "country": event.country,
    }


def estimated_delivery(s: Shipment) -> dict[str, Any] | None:
    """The estimate, or None while there is none (closed shipment, or no history yet)."""
    try:
        estimate = s.estimate
    except ShipmentEstimate.DoesNotExist:
        return None
    if estimate.earliest is None or estimate.latest is None:
        return None
    return {
        "earliest": dt(estimate.earliest),
        "latest": dt(estimate.latest),
        "confidence": estimate.confidence,
        "basis": estimate.basis,
        "samples": estimate.samples,
        "stage": estimate.stage,
        "computed_at": dt(estimate.computed_at),
    }


def shipment(s: Shipment) -> dict[str, Any]:
    # An unproven claim (docs/claiming.md) reads its own order number and nothing dated before
    # its registration: the status stays (the buyers' page shows it to anyone).
    status_event = status_event_of(s)
    if status_event is not None and not shop_may_see(s, status_event.occurred_at):
        status_event = None
    return {
        "tracking_number": s.tracking_number,
        "order_number": shop_order_number(s),
        "carrier": s.carrier,
        "transport_mode": s.transport_mode,
        "origin_country": s.origin_country,
        "destination_country": s.destination_country,
        "weight_kg": _dec(s.weight_kg),
        "declared_value": _dec(s.declared_value),
        "currency": s.currency,
        "metadata": s.metadata,
        "status": s.status,
        "stage": s.stage,
        "status_changed_at": dt(
            s.status_changed_at if shop_may_see(s, s.status_changed_at) else None
        ),
        "status_event": _event_ref(status_event),
        "last_event_at": dt(s.last_event_at if shop_may_see(s, s.last_event_at) else None),
        "history_from": dt(s.claim_limited_since),
        "estimated_delivery": estimated_delivery(s),
        "archived_at": dt(s.archived_at),
        "created_at": dt(s.created_at),
        "updated_at": dt(s.updated_at),
    }


def timeline_entry(e: TimelineEntry) -> dict[str, Any]:
    return {
        "occurred_at": e.occurred_at_text,
        "local_time": e.local_time,
        "utc_offset_minutes": e.utc_offset_minutes,
        "code": e.code,
        "status": e.status,
        "stage": e.stage,
        "location": {"name": e.location_name, "code": e.location_code, "country": e.country},
        "description": e.description,
        "sources": [
            {
                "event_id": s.event_id,
                "feed": s.feed,
                "warehouse": s.warehouse,
                "warehouse_name": s.warehouse_name,
                "unit": s.unit,
            }
            for s in e.sources
        ],
    }


def shipment_detail(s: Shipment, entries: list[TimelineEntry]) -> dict[str, Any]:
    entries = shop_visible(s, entries)
    reached = milestones(
        entries, origin_country=s.origin_country, destination_country=s.destination_country
    )
    data = shipment(s)
    data["milestones"] = {
        name: None if e is None else e.occurred_at_text for name, e in reached.items()
    }
    data["timeline"] = [timeline_entry(e) for e in entries]
    return data


def endpoint(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": e.pk,
        "url": e.url,
        "description": e.description,
        "event_types": list(e.event_types),
        "active": e.active,
        "disabled_at": dt(e.disabled_at),
        "disabled_reason": e.disabled_reason,
        "consecutive_failures": e.consecutive_failures,
        "created_at": dt(e.created_at),
    }


def attempt(a: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": dt(a.attempted_at),
        "webhook_id": a.delivery.webhook_id,
        "event_type": a.delivery.event_type,
        "status_code": a.status_code,
        "latency_ms": a.latency_ms,
        "error": a.error,
    }


def notification_settings(found: ShopNotificationSettings) -> dict[str, Any]:
    return {
        "enabled": found.enabled,
        "moments": list(found.moments),
        "default_language": found.default_language,
        "brand_color": found.brand_color,
        "reply_to": found.reply_to,
        "updated_at": None if found._state.adding else dt(found.updated_at),
    }
