"""The operators' view of buyer notifications: each shop's settings, each shipment's buyer, and
every message: to whom, which moments, its state, attempts, why it waits and its last error."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from shipments.models import (
    BuyerContact,
    NotificationMessage,
    NotificationMoment,
    ShopNotificationSettings,
)
from shipments.notifications.models import email_hash


@admin.register(ShopNotificationSettings)
class ShopNotificationSettingsAdmin(admin.ModelAdmin[ShopNotificationSettings]):
    list_display = ("shop", "enabled", "default_language", "brand_color", "updated_at")
    list_filter = ("enabled",)
    raw_id_fields = ("shop",)
    search_fields = ("shop__name", "shop__slug")


@admin.register(BuyerContact)
class BuyerContactAdmin(admin.ModelAdmin[BuyerContact]):
    list_display = ("shipment", "shop", "email", "language", "notify", "updated_at")
    raw_id_fields = ("shipment", "shop")
    search_fields = ("shipment__tracking_number", "email")
    readonly_fields = ("email_hash",)

    def save_model(self, request: HttpRequest, obj: BuyerContact, form: Any, change: bool) -> None:
        obj.email_hash = email_hash(obj.email)
        super().save_model(request, obj, form, change)


class MomentInline(admin.TabularInline[NotificationMoment, NotificationMessage]):
    model = NotificationMoment
    fk_name = "message"
    fields = ("moment", "event", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NotificationMessage)
class NotificationMessageAdmin(admin.ModelAdmin[NotificationMessage]):
    list_display = (
        "created_at",
        "shipment",
        "recipient",
        "language",
        "moment_list",
        "state",
        "attempts",
        "sent_at",
        "note",
    )
    list_filter = ("state", "language")
    search_fields = ("shipment__tracking_number", "recipient", "message_id")
    list_select_related = ("shipment",)
    date_hierarchy = "created_at"
    inlines = [MomentInline]
    readonly_fields = (
        "message_id",
        "shipment",
        "shop",
        "recipient",
        "email_hash",
        "language",
        "moments",
        "state",
        "attempts",
        "next_attempt_at",
        "note",
        "last_error",
        "created_at",
        "sent_at",
    )

    @admin.display(description="moments")
    def moment_list(self, obj: NotificationMessage) -> str:
        return ", ".join(obj.moments)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
