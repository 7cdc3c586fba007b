"""Admin wiring: the exceptions queue with its bulk actions, the ack log, the dashboard link."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from operations import services
from operations.models import ExceptionAck, ExceptionItem

# The admin index links to the dashboard (a template that extends the stock index).
if admin.site.index_template is None:
    admin.site.index_template = "operations/admin_index.html"


class AcknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Open"), ("yes", "Acknowledged")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.filter(acknowledged_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


@admin.register(ExceptionItem)
class ExceptionItemAdmin(admin.ModelAdmin[ExceptionItem]):
    list_display = (
        "shipment_link",
        "kind",
        "stage",
        "lane",
        "since",
        "detail",
        "acknowledged_at",
        "note",
    )
    list_filter = (AcknowledgedFilter, "kind", "stage")
    list_select_related = ("shipment",)
    search_fields = ("=shipment__tracking_number", "lane", "note")
    ordering = ("since",)
    actions = ("acknowledge", "add_note")
    readonly_fields = tuple(f.name for f in ExceptionItem._meta.fields)
    show_full_result_count = False

    @admin.display(description="shipment", ordering="shipment__tracking_number")
    def shipment_link(self, obj: ExceptionItem) -> str:
        url = reverse("admin:shipments_shipment_change", args=[obj.shipment_id])
        return format_html('<a href="{}">{}</a>', url, obj.shipment.tracking_number)

    @admin.action(description="Acknowledge selected exceptions")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[ExceptionItem]) -> None:
        note = str(request.POST.get("note", "")).strip()
        count = services.exceptions_acknowledge(items=queryset, by=request.user, note=note)
        self.message_user(request, f"{count} exception(s) acknowledged", messages.SUCCESS)

    @admin.action(description="Add a note to selected exceptions")
    def add_note(
        self, request: HttpRequest, queryset: QuerySet[ExceptionItem]
    ) -> HttpResponse | None:
        # The dashboard posts its note along with the action; the changelist asks for it.
        form = NoteForm(request.POST if "note" in request.POST else None)
        if form.is_valid():
            count = services.exceptions_note(
                items=queryset, by=request.user, note=form.cleaned_data["note"]
            )
            self.message_user(request, f"note added to {count} exception(s)", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a note",
            "form": form,
            "items": queryset.select_related("shipment"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return render(request, "operations/note_form.html", context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExceptionAck)
class ExceptionAckAdmin(admin.ModelAdmin[ExceptionAck]):
    list_display = ("shipment", "kind", "acknowledged", "note", "by", "at")
    list_filter = ("kind", "acknowledged")
    list_select_related = ("shipment", "by")
    search_fields = ("=shipment__tracking_number", "note")
    readonly_fields = tuple(f.name for f in ExceptionAck._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
