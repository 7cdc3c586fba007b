"""What the shops' API keeps: idempotent replays, webhook endpoints and their deliveries."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from shipments.models.domain import Shipment, Shop


class IdempotencyRecord(models.Model):
    """The first response to a request sent with an `Idempotency-Key`, replayed on a retry."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of method, path and body: the same key with a different request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.SmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "key"], name="idempotency_unique_key"),
        ]


class WebhookEventType(models.TextChoices):
    STATUS_CHANGED = "shipment.status_changed", "Status change"
    TRACKING_UPDATED = "shipment.tracking_updated", "Every new event (timeline changed)"
    ESTIMATE_CHANGED = "shipment.estimate_changed", "Estimated delivery changed"


class WebhookEndpoint(models.Model):
    """A shop's webhook receiver. Secrets are kept readable: HMAC signing needs the secret."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=1000)
    description = models.CharField(max_length=200, blank=True, default="")
    # A list of WebhookEventType values; the recorder's SQL tests membership with `?`.
    event_types = models.JSONField(default=list)
    secret = models.CharField(max_length=100)
    # During rotation the previous secret also signs, until it expires.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    consecutive_failures = models.IntegerField(default=0)
    # Circuit breaker (shipments.relay): open while this is in the future; each failed probe
    # after opening counts a trip and doubles the next open period.
    breaker_open_until = models.DateTimeField(null=True, blank=True)
    breaker_trips = models.IntegerField(default=0)
    # One relay at a time sends to an endpoint: it holds it until here. In the past: when a
    # relay last let it go (the claim serves the longest-waiting endpoints first).
    relay_leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["shop", "active"], name="webhookendpoint_shop_active")]

    def __str__(self) -> str:
        return self.url


class WebhookSequence(models.Model):
    """Per-shipment counter behind each notification's `sequence` (allocated in the recorder)."""

    shipment = models.OneToOneField(
        Shipment, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last = models.BigIntegerField(default=0)


class WebhookDelivery(models.Model):
    """The transactional outbox: one notification for one endpoint, written with its cause.

    `next_attempt_at` doubles as a lease: the relay pushes it forward when it claims a row, so a
    relay that dies mid-send leaves the row due again later instead of stuck.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    message_id = models.UUIDField(unique=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    sequence = models.BigIntegerField()
    data = models.JSONField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhookdelivery_due",
                condition=Q(state="pending"),
            ),
            models.Index(fields=["endpoint", "-created_at"], name="webhookdelivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"msg_{self.message_id.hex}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.message_id.hex}"


class WebhookAttempt(models.Model):
    """Delivery log: one row per HTTP attempt."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="log")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["endpoint", "-attempted_at"], name="webhookattempt_endpoint")
        ]
