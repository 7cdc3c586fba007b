"""The models of buyer notifications (docs/notifications.md), part of the `shipments` app.

`shipments.models` imports this module, so Django registers them with the app; they name the
app's other models by string only.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from shipments.notifications.moments import Moment

LANGUAGE_CHOICES = list(settings.LANGUAGES)
ALL_MOMENTS = [moment.value for moment in Moment]


def email_hash(email: str) -> str:
    """sha256 of the address, lowercased: what opt-outs and the daily cap count by, so an
    opt-out outlives the address it names without keeping it."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _all_moments() -> list[str]:
    return list(ALL_MOMENTS)


class ShopNotificationSettings(models.Model):
    """A shop's defaults: whether its buyers are emailed, about which moments, in which
    language by default, and the brand its messages wear."""

    shop = models.OneToOneField(
        "shipments.Shop",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="notification_settings",
    )
    enabled = models.BooleanField(
        default=False, help_text="Email buyers who were given (a shipment can turn it off)."
    )
    # A list of Moment values; the recorder's SQL tests membership with `?`.
    moments = models.JSONField(default=_all_moments, blank=True)
    default_language = models.CharField(max_length=8, choices=LANGUAGE_CHOICES, default="en")
    brand_color = models.CharField(
        max_length=7,
        default="#1f6feb",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour as #rrggbb.")],
    )
    reply_to = models.EmailField(blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "shop notification settings"
        verbose_name_plural = "shop notification settings"

    def __str__(self) -> str:
        return f"notifications of shop {self.shop_id}"


class BuyerContact(models.Model):
    """The buyer's email for one shipment: personal data, kept only to notify, never listed,
    never on the public page; erased with the shipment or by the retention sweep."""

    shipment = models.OneToOneField(
        "shipments.Shipment",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="buyer_contact",
    )
    # The shop that gave it: a shipment that changes hands (docs/claiming.md) stays silent.
    shop = models.ForeignKey("shipments.Shop", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    email_hash = models.CharField(max_length=64)
    language = models.CharField(max_length=8, choices=LANGUAGE_CHOICES, blank=True, default="")
    # None: the shop's setting.
    notify = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"buyer of {self.shipment_id}"


class NotificationOptOut(models.Model):
    """A buyer's unsubscribe from one shop's messages, by the address's hash."""

    shop = models.ForeignKey("shipments.Shop", on_delete=models.CASCADE, related_name="+")
    email_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "email_hash"], name="optout_unique"),
        ]


class NotificationMessage(models.Model):
    """One email to one buyer, carrying one or more moments (coalesced).

    `message_id` is fixed when the message is composed, before any send: a resend after a
    sender died mid-send carries the same Message-ID. `next_attempt_at` doubles as the lease of
    a message being sent.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed", "Failed (gave up)"
        CANCELLED = "cancelled", "Not sent (unsubscribed or turned off)"

    message_id = models.CharField(max_length=200, unique=True)
    shipment = models.ForeignKey(
        "shipments.Shipment", on_delete=models.CASCADE, related_name="notification_messages"
    )
    # Null only for moments whose buyer was removed before they left (cancelled).
    shop = models.ForeignKey(
        "shipments.Shop", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Erased (blank) by the retention sweep; the hash still counts towards the daily cap.
    recipient = models.EmailField(blank=True, default="")
    email_hash = models.CharField(max_length=64, blank=True, default="")
    language = models.CharField(max_length=8, choices=LANGUAGE_CHOICES, blank=True, default="")
    moments = models.JSONField(default=list)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Why it waits (quiet hours, the daily cap) or was not sent; the last error.
    note = models.CharField(max_length=300, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notifymessage_due",
                condition=Q(state__in=["pending", "sending"]),
            ),
            models.Index(
                fields=["email_hash", "sent_at"],
                name="notifymessage_cap",
                condition=Q(state="sent"),
            ),
        ]

    def __str__(self) -> str:
        return self.message_id


class NotificationMoment(models.Model):
    """The outbox: a moment of a shipment, written by the recorder's status statement (or the
    running-late sweep); `message` is set when a message takes it."""

    shipment = models.ForeignKey(
        "shipments.Shipment", on_delete=models.CASCADE, related_name="notification_moments"
    )
    moment = models.CharField(max_length=24, choices=Moment.choices)
    event = models.ForeignKey(
        "shipments.TrackingEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    message = models.ForeignKey(
        NotificationMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="moment_rows",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "moment"], name="notifymoment_once"),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="notifymoment_unsent",
                condition=Q(message__isnull=True),
            ),
        ]
