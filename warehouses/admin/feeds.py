"""Warehouses and feeds in the admin: a feed's source (checked on save), run now, upload a file,
its unknown partner codes, push tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from shipments.admin_secrets import SecretIssue, SecretIssuingAdmin
from shipments.statuses import EVENT_CODE_CHOICES
from warehouses.ingest.replay import (
    CodeMappingError,
    ReplayError,
    feed_code_map,
)
from warehouses.ingest.runs import feed_run_create
from warehouses.models import (
    Feed,
    FeedRun,
    Warehouse,
)
from warehouses.selectors import feed_unknown_codes
from warehouses.sources.checks import source_location_problem
from warehouses.sources.payloads import PayloadTooLarge
from warehouses.tasks import fetch_feed


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin[Warehouse]):
    list_display = ("code", "name", "kind", "country", "city", "unlocode", "timezone")
    list_filter = ("kind", "country")
    search_fields = ("code", "name", "city", "unlocode")


class UploadForm(forms.Form):
    file = forms.FileField()
    reprocess = forms.BooleanField(
        required=False, help_text="Run again even if this exact file was ingested before"
    )


class CodeMapForm(forms.Form):
    partner_code = forms.CharField(max_length=200)
    event_code = forms.ChoiceField(choices=EVENT_CODE_CHOICES)


def _push_token_issue(request: HttpRequest, feed: Feed) -> str:
    from warehouses.api.tokens import feed_push_token_rotate

    return feed_push_token_rotate(feed=feed)


class FeedForm(forms.ModelForm[Feed]):
    class Meta:
        model = Feed
        # The admin passes the fields it shows; these are the ones clean() reads.
        fields = ("code", "transport", "source_location")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        probe = Feed(
            code=cleaned.get("code") or "",
            transport=cleaned.get("transport") or "",
            source_location=cleaned.get("source_location") or "",
        )
        problem = source_location_problem(probe)
        if problem:
            self.add_error("source_location", problem)
        return cleaned


@admin.register(Feed)
class FeedAdmin(SecretIssuingAdmin[Feed]):
    form = FeedForm
    list_display = (
        "code",
        "name",
        "warehouse",
        "format",
        "transport",
        "active",
        "schedule",
        "actions_column",
    )
    list_filter = ("format", "transport", "active", "warehouse")
    list_select_related = ("warehouse", "schedule")
    search_fields = ("code", "name", "warehouse__code")
    raw_id_fields = ("warehouse",)
    actions = ("run_now", "rotate_push_token")
    readonly_fields = ("http_etag", "http_last_modified", "last_checked_at", "push_token_hash")
    secret_issues = (
        SecretIssue[Feed](
            slug="rotate-push-token",
            title="Rotate push API tokens",
            consequence="Each of these feeds gets a new push token; its current one stops "
            "working at once.",
            issue=_push_token_issue,
            label=lambda feed: feed.code,
        ),
    )

    @admin.action(description="New push API token (shown once)", permissions=["change"])
    def rotate_push_token(self, request: HttpRequest, queryset: QuerySet[Feed]) -> HttpResponse:
        return self.confirm_secret_issue(request, queryset, "rotate-push-token")

    @admin.display(description="")
    def actions_column(self, obj: Feed) -> str:
        return format_html(
            '<a class="button" href="{}">Upload file</a> <a class="button" href="{}">'
            "Unknown codes</a>",
            reverse("admin:warehouses_feed_upload", args=[obj.pk]),
            reverse("admin:warehouses_feed_unknown_codes", args=[obj.pk]),
        )

    @admin.action(description="Run now (fetch from the feed's source)")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        for feed in queryset:
            fetch_feed.delay(feed.pk)
        self.message_user(request, f"{queryset.count()} feed(s) queued", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:feed_id>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="warehouses_feed_upload",
            ),
            path(
                "<int:feed_id>/unknown-codes/",
                self.admin_site.admin_view(self.unknown_codes_view),
                name="warehouses_feed_unknown_codes",
            ),
        ]
        return extra + super().get_urls()

    def unknown_codes_view(self, request: HttpRequest, feed_id: int) -> HttpResponse:
        """The partner codes the feed's records were rejected for, each with a one-click
        "map to…" that saves the mapping and replays (or re-runs) what it rejected."""
        feed = get_object_or_404(Feed, pk=feed_id)
        if request.method == "POST":
            if not self.has_change_permission(request, feed):
                raise PermissionDenied
            form = CodeMapForm(request.POST)
            if form.is_valid():
                self._map_code(request, feed, form.cleaned_data)
            else:
                self.message_user(request, f"not mapped: {form.errors.as_text()}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Unknown codes of {feed}",
            "feed": feed,
            "codes": feed_unknown_codes(feed_id=feed.pk),
            "mapping": sorted((feed.code_mapping or {}).items()),
            "event_codes": EVENT_CODE_CHOICES,
            "can_map": self.has_change_permission(request, feed),
            "opts": self.model._meta,
        }
        return render(request, "admin/warehouses/feed/unknown_codes.html", context)

    def _map_code(self, request: HttpRequest, feed: Feed, data: dict[str, str]) -> None:
        try:
            result = feed_code_map(
                feed_id=feed.pk, partner_code=data["partner_code"], event_code=data["event_code"]
            )
        except (CodeMappingError, ReplayError) as exc:
            self.message_user(request, f"not mapped: {exc}", messages.ERROR)
            return
        runs = format_html_join(
            ", ",
            '<a href="{}">run {}</a>',
            ((reverse("admin:warehouses_feedrun_change", args=[r.pk]), r.pk) for r in result.runs),
        )
        self.message_user(
            request,
            format_html(
                "{} → {} saved on {}; {} rejected record(s) sent again: {}",
                result.partner_code,
                result.event_code,
                feed.code,
                result.affected,
                runs or "nothing to replay",
            ),
            messages.SUCCESS,
        )
        for pk, why in result.skipped:
            self.message_user(
                request, f"rejected record {pk} not replayed: {why}", messages.WARNING
            )

    def upload_view(self, request: HttpRequest, feed_id: int) -> HttpResponse:
        feed = get_object_or_404(Feed, pk=feed_id)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                run = feed_run_create(
                    feed=feed,
                    content=upload,
                    original_name=upload.name,
                    source=FeedRun.Source.UPLOAD,
                    reprocess=form.cleaned_data["reprocess"],
                )
            except PayloadTooLarge as exc:
                form.add_error("file", str(exc))
            else:
                level = (
                    messages.WARNING if run.status == FeedRun.Status.DUPLICATE else messages.SUCCESS
                )
                self.message_user(request, f"Run {run.pk}: {run.get_status_display()}", level)
                return HttpResponseRedirect(
                    reverse("admin:warehouses_feedrun_change", args=[run.pk])
                )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Upload a file to {feed}",
            "form": form,
            "feed": feed,
            "opts": self.model._meta,
        }
        return render(request, "admin/warehouses/feed/upload.html", context)
