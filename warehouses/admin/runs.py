"""Runs and their rejected records in the admin: progress, re-run, replay, triage filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from warehouses.ingest.replay import (
    ReplayError,
    feed_run_rerun,
    rejected_records_replay,
)
from warehouses.models import (
    FeedRun,
    RejectedRecord,
)
from warehouses.parsers import encodings


@admin.register(FeedRun)
class FeedRunAdmin(admin.ModelAdmin[FeedRun]):
    list_display = (
        "id",
        "feed",
        "status",
        "source",
        "original_name",
        "read_as",
        "records",
        "events_created",
        "duplicates",
        "rejected_link",
        "shipments_touched",
        "duration",
        "attempts",
        "heartbeat_at",
        "short_error",
        "created_at",
    )
    list_filter = ("status", "source", "feed__warehouse", "feed")
    list_select_related = ("feed",)
    search_fields = ("original_name", "payload_sha256", "feed__code")
    raw_id_fields = ("feed", "duplicate_of")
    date_hierarchy = "created_at"
    readonly_fields = (*(f.name for f in FeedRun._meta.fields), "progress", "first_rejects")
    actions = ("rerun",)
    # Polls progress/ while the run is queued or running (issue 5).
    change_form_template = "admin/warehouses/feedrun/change_form.html"

    @admin.action(description="Re-run selected runs (a failed run, or after fixing the mapping)")
    def rerun(self, request: HttpRequest, queryset: QuerySet[FeedRun]) -> None:
        for run in queryset:
            try:
                new = feed_run_rerun(run_id=run.pk)
            except ReplayError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"run {run.pk} re-run as run {new.pk}", messages.SUCCESS)

    @admin.display(description="encoding", ordering="encoding")
    def read_as(self, obj: FeedRun) -> str:
        """The encoding the payload was read in: "gb18030 (detected)", "utf-8"."""
        if not obj.encoding:
            return "—"
        return encodings.Decoding(obj.encoding, detected=obj.encoding_detected).label

    @admin.display(description="progress")
    def progress(self, obj: FeedRun) -> str:
        figures = run_progress(obj)
        return format_html(
            '<span id="run-progress" data-url="{}" data-status="{}">{}</span>',
            reverse("admin:warehouses_feedrun_progress", args=[obj.pk]),
            obj.status,
            figures["text"],
        )

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:run_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="warehouses_feedrun_progress",
            )
        ]
        return extra + super().get_urls()

    def progress_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        run = get_object_or_404(FeedRun, pk=run_id)
        return JsonResponse(run_progress(run))

    @admin.display(description="first rejected records")
    def first_rejects(self, obj: FeedRun) -> str:
        # A run can reject 100,000 rows: show the first few, link to the searchable list.
        rows = obj.rejects.order_by("line")[:20]
        url = reverse("admin:warehouses_rejectedrecord_changelist") + f"?run__id__exact={obj.pk}"
        return format_html(
            "<table><tr><th>line</th><th>field</th><th>reason</th><th>raw</th></tr>{}</table>"
            '<p><a href="{}">All {} rejected records of this run</a></p>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                ((r.line, r.field, r.reason, r.raw[:200]) for r in rows),
            ),
            url,
            obj.rejected,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="rejected", ordering="rejected")
    def rejected_link(self, obj: FeedRun) -> str:
        if not obj.rejected:
            return "0"
        url = reverse("admin:warehouses_rejectedrecord_changelist") + f"?run__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.rejected)

    @admin.display(description="error")
    def short_error(self, obj: FeedRun) -> str:
        # The full text (last error, attempt, where its traceback is) is on the run's page.
        return obj.error if len(obj.error) <= 120 else obj.error[:119] + "…"

    @admin.display(description="duration")
    def duration(self, obj: FeedRun) -> str:
        seconds = obj.duration_seconds
        return "" if seconds is None else f"{seconds:.1f} s"


class ReplayedFilter(admin.SimpleListFilter):
    title = "replayed"
    parameter_name = "replayed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Not yet"), ("yes", "Replayed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(replayed_in__isnull=self.value() == "no")
        return queryset


@admin.register(RejectedRecord)
class RejectedRecordAdmin(admin.ModelAdmin[RejectedRecord]):
    list_display = ("run", "line", "field", "reason", "short_raw", "replayed_in", "created_at")
    list_filter = (ReplayedFilter, "field", "run__feed")
    list_select_related = ("run", "run__feed", "replayed_in")
    search_fields = ("reason", "raw", "=run__id", "=line")
    raw_id_fields = ("run",)
    readonly_fields = (
        "run",
        "line",
        "field",
        "reason",
        "unknown_code",
        "raw",
        "created_at",
        "replayed_in",
    )
    fields = (
        "run",
        "line",
        "field",
        "reason",
        "unknown_code",
        "raw",
        "corrected_raw",
        "replayed_in",
        "created_at",
    )
    actions = ("replay",)
    # Adds "Save and replay" to the change form (issue 5).
    change_form_template = "admin/warehouses/rejectedrecord/change_form.html"

    @admin.action(description="Replay selected (corrected text where given)")
    def replay(self, request: HttpRequest, queryset: QuerySet[RejectedRecord]) -> None:
        self._replay(request, list(queryset))

    def _replay(self, request: HttpRequest, rejects: list[RejectedRecord]) -> FeedRun | None:
        try:
            result = rejected_records_replay(rejects=rejects)
        except ReplayError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        for run in result.runs:
            self.message_user(
                request,
                format_html(
                    'Replay queued as <a href="{}">run {}</a>',
                    reverse("admin:warehouses_feedrun_change", args=[run.pk]),
                    run.pk,
                ),
                messages.SUCCESS,
            )
        for pk, why in result.skipped:
            self.message_user(
                request, f"rejected record {pk} not replayed: {why}", messages.WARNING
            )
        return result.runs[0] if result.runs else None

    def response_change(self, request: HttpRequest, obj: RejectedRecord) -> HttpResponse:
        if "_replay" in request.POST:
            run = self._replay(request, [obj])
            if run is not None:
                return HttpResponseRedirect(
                    reverse("admin:warehouses_feedrun_change", args=[run.pk])
                )
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    @admin.display(description="raw")
    def short_raw(self, obj: RejectedRecord) -> str:
        return obj.raw[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# --- customs documents and the three-document match (issue 4) --------------------------------


def run_progress(run: FeedRun) -> dict[str, Any]:
    """Records processed so far and the rate, for a run's change page (and its poll)."""
    end = run.finished_at or timezone.now()
    seconds = (end - run.started_at).total_seconds() if run.started_at else 0.0
    rate = run.records_processed / seconds if seconds > 0 else 0.0
    active = run.status in (FeedRun.Status.QUEUED, FeedRun.Status.RUNNING)
    text = f"{run.records_processed:,} records processed"
    if seconds:
        text += f" in {seconds:,.0f} s ({rate:,.0f} records/s)"
    text += f"; {run.events_created:,} events, {run.rejected:,} rejected — {run.status}"
    return {
        "status": run.status,
        "active": active,
        "records_processed": run.records_processed,
        "events_created": run.events_created,
        "rejected": run.rejected,
        "seconds": round(seconds, 1),
        "rate": round(rate, 1),
        "text": text,
    }
