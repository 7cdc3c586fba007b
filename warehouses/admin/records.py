"""What ingestion keeps beside events, read-only for operators: customs documents and their
three-document matches, interchanges seen, retracted events."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from warehouses.models import (
    CustomsDocument,
    CustomsMatch,
    InterchangeSeen,
    RetractedEvent,
)


class RefusedFilter(admin.SimpleListFilter):
    """Orders customs would refuse right now: a document missing or a field that disagrees."""

    title = "would be refused"
    parameter_name = "refused"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes (missing or mismatch)"), ("no", "No (matched)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.exclude(result=CustomsMatch.Result.MATCHED)
        if self.value() == "no":
            return queryset.filter(result=CustomsMatch.Result.MATCHED)
        return queryset


@admin.register(CustomsMatch)
class CustomsMatchAdmin(admin.ModelAdmin[CustomsMatch]):
    list_display = (
        "order_no",
        "result",
        "missing",
        "mismatched",
        "logistics_no",
        "shipment",
        "direction",
        "checked_at",
    )
    list_filter = (RefusedFilter, "result", "direction")
    list_select_related = ("shipment",)
    search_fields = ("=order_no", "=logistics_no", "=shipment__tracking_number")
    raw_id_fields = ("shipment",)
    date_hierarchy = "checked_at"
    readonly_fields = (*(f.name for f in CustomsMatch._meta.fields), "documents")
    show_full_result_count = False

    @admin.display(description="documents")
    def documents(self, obj: CustomsMatch) -> str:
        url = reverse("admin:warehouses_customsdocument_changelist") + f"?order_no={obj.order_no}"
        return format_html('<a href="{}">Documents of order {}</a>', url, obj.order_no)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(CustomsDocument)
class CustomsDocumentAdmin(admin.ModelAdmin[CustomsDocument]):
    list_display = (
        "doc_type",
        "number",
        "message",
        "order_no",
        "logistics_no",
        "cop_no",
        "invt_no",
        "feed",
        "run",
        "occurred_at",
        "updated_at",
    )
    list_filter = ("doc_type", "direction", "message")
    list_select_related = ("feed", "run")
    search_fields = ("=order_no", "=logistics_no", "=cop_no", "=invt_no", "=number")
    raw_id_fields = ("feed", "run")
    readonly_fields = tuple(f.name for f in CustomsDocument._meta.fields)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(InterchangeSeen)
class InterchangeSeenAdmin(admin.ModelAdmin[InterchangeSeen]):
    list_display = ("interchange", "feed", "run", "first_line", "seen_at")
    list_filter = ("feed",)
    list_select_related = ("feed", "run")
    search_fields = ("interchange",)
    raw_id_fields = ("feed", "run")


@admin.register(RetractedEvent)
class RetractedEventAdmin(admin.ModelAdmin[RetractedEvent]):
    list_display = (
        "source_event_id",
        "code",
        "occurred_at",
        "feed",
        "run",
        "reason",
        "retracted_at",
    )
    list_filter = ("feed",)
    list_select_related = ("feed", "run")
    search_fields = ("=source_event_id",)
    readonly_fields = tuple(f.name for f in RetractedEvent._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
