"""Thin Celery tasks for the API side: the webhook relay and housekeeping."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from shipments import partitions, relay, services


@shared_task(acks_late=True, soft_time_limit=300, time_limit=330)
def relay_webhooks() -> int:
    """One relay pass (beat runs it every few seconds). Safe twice: endpoints are claimed with
    SKIP LOCKED and leased, so two relays never send to the same endpoint at once."""
    return relay.webhook_deliveries_send(limit=settings.WEBHOOK_RELAY_BATCH)


@shared_task(acks_late=True)
def prune_idempotency_keys() -> int:
    return services.idempotency_prune()


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1860)
def refresh_delivery_estimates() -> int:
    """Rebuild the lane/stage statistics, then re-estimate open shipments with them. Safe twice:
    the statistics are replaced whole, and a re-estimate that changes nothing writes nothing."""
    from shipments.recording import estimates

    estimates.estimate_stats_refresh()
    return estimates.estimates_refresh()


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def maintain_event_partitions() -> list[str]:
    """Create the events' monthly partitions ahead (shipments/partitions.py). Safe twice, and
    at any time: a month already there is left alone; only catalogue and DEFAULT rows move."""
    return partitions.partitions_ensure()


@shared_task(acks_late=True, soft_time_limit=300, time_limit=330)
def send_notifications() -> int:
    """One buyer-email pass (beat runs it every few seconds). Safe twice: moments and messages
    are claimed with SKIP LOCKED, and a message being sent is leased."""
    from shipments.notifications import sender

    return sender.notifications_send()


@shared_task(acks_late=True)
def notification_sweeps() -> int:
    """Running-late moments (estimate p80 passed, no delivery) and the buyer-email retention
    sweep. Safe twice: a moment is unique per shipment, an erased email stays erased."""
    from shipments.notifications import services as notification_services

    notification_services.buyer_contacts_expire()
    return notification_services.running_late_enqueue()
