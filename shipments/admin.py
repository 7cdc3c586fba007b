"""Operator admin for the domain: shipments with their read-only timeline, shops, units."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from shipments.models import (
    Shipment,
    Shop,
    ShopAPIKey,
    StatusChange,
    TrackingEvent,
    TransportUnit,
    UnitMembership,
)
from warehouses.models import Warehouse


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin[Shop]):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")


@admin.register(ShopAPIKey)
class ShopAPIKeyAdmin(admin.ModelAdmin[ShopAPIKey]):
    list_display = ("name", "shop", "prefix", "created", "revoked", "expiry_date")
    list_filter = ("revoked",)
    list_select_related = ("shop",)
    raw_id_fields = ("shop",)
    search_fields = ("name", "prefix", "shop__name")
    readonly_fields = ("prefix", "hashed_key", "created")


class EventInline(admin.TabularInline[TrackingEvent, Shipment]):
    model = TrackingEvent
    fk_name = "shipment"
    fields = (
        "occurred_at",
        "utc_offset_minutes",
        "tz_source",
        "code",
        "status",
        "location_name",
        "location_code",
        "country",
        "description",
        "feed",
        "run",
    )
    readonly_fields = fields
    ordering = ("occurred_at", "id")
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[TrackingEvent]:
        return super().get_queryset(request).select_related("feed")


class StatusChangeInline(admin.TabularInline[StatusChange, Shipment]):
    model = StatusChange
    fields = ("changed_at", "from_status", "to_status", "from_stage", "to_stage", "event")
    readonly_fields = fields
    ordering = ("changed_at", "id")
    extra = 0
    max_num = 0
    can_delete = False


class WarehouseFilter(admin.SimpleListFilter):
    """Shipments a warehouse has reported on (a semi-join per shipment, no DISTINCT)."""

    title = "warehouse"
    parameter_name = "warehouse"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(w.pk), str(w)) for w in Warehouse.objects.order_by("code")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        warehouse_id = self.value()
        if not warehouse_id:
            return queryset
        seen = TrackingEvent.objects.filter(shipment=OuterRef("pk"), warehouse_id=warehouse_id)
        return queryset.filter(Exists(seen))


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin[Shipment]):
    list_display = (
        "tracking_number",
        "order_number",
        "shop",
        "status",
        "stage",
        "origin_country",
        "destination_country",
        "last_event_at",
        "status_changed_at",
    )
    list_filter = (
        "status",
        "stage",
        "destination_country",
        "origin_country",
        WarehouseFilter,
    )
    list_select_related = ("shop",)
    search_fields = ("=tracking_number", "=order_number")
    raw_id_fields = ("shop", "status_event")
    readonly_fields = ("status", "stage", "status_changed_at", "status_event", "last_event_at")
    inlines = (EventInline, StatusChangeInline)
    show_full_result_count = False


class MembershipInline(admin.TabularInline[UnitMembership, TransportUnit]):
    model = UnitMembership
    fields = ("shipment", "loaded_at", "unloaded_at")
    raw_id_fields = ("shipment",)
    extra = 0


@admin.register(TransportUnit)
class TransportUnitAdmin(admin.ModelAdmin[TransportUnit]):
    list_display = ("number", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("=number",)
    inlines = (MembershipInline,)
