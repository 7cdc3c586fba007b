"""Operator admin for the sources side: warehouses, feeds (run now, upload), runs, rejects."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from shipments.admin_secrets import SecretIssue, SecretIssuingAdmin
from shipments.statuses import EVENT_CODE_CHOICES
from warehouses.ingest.replay import (
    CodeMappingError,
    ReplayError,
    feed_code_map,
    feed_run_rerun,
    rejected_records_replay,
)
from warehouses.ingest.runs import feed_run_create
from warehouses.models import (
    CustomsDocument,
    CustomsMatch,
    Feed,
    FeedRun,
    InterchangeSeen,
    RejectedRecord,
    RetractedEvent,
    Warehouse,
)
from warehouses.parsers import encodings
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
