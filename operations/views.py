"""The operations dashboard inside the admin (wrapped in `admin_view`: staff only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.replica import replica_reads
from operations import charts, selectors
from operations.exports import TABLES
from operations.models import ExceptionItem
from operations.tasks import refresh_dashboard
from shipments import exports


@replica_reads  # after an operator's change, their own session reads the primary
def dashboard(request: HttpRequest) -> HttpResponse:
    data = selectors.dashboard_get(now=timezone.now())
    weeks = sorted({w for w, _ in data.transit_trend} | {w for w, _ in data.dwell_trend})
    transit = dict(data.transit_trend)
    dwell = dict(data.dwell_trend)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        "d": data,
        "kinds": ExceptionItem.Kind.choices,
        "exceptions_url": reverse("admin:operations_exceptionitem_changelist"),
        "formats": exports.FORMATS,
        "chart_events": charts.columns(
            [(f"{day:%m-%d}", n) for day, n in data.events_per_day], label="events per day"
        ),
        "chart_shipments": charts.columns(
            [(f"{day:%m-%d}", n) for day, n in data.shipments_per_day],
            label="new shipments per day",
        ),
        "chart_status": charts.hbars(data.status_totals, label="shipments by status"),
        "chart_warehouses": charts.hbars(
            data.events_by_warehouse, label="events by warehouse (30 days)"
        ),
        "chart_countries": charts.hbars(
            data.events_by_country, label="events by destination country (30 days)"
        ),
        "chart_trend": charts.lines(
            [f"{w:%m-%d}" for w in weeks],
            [
                ("transit p50", [transit[w].p50 if w in transit else None for w in weeks]),
                ("transit p90", [transit[w].p90 if w in transit else None for w in weeks]),
                ("dwell p50", [dwell[w].p50 if w in dwell else None for w in weeks]),
                ("dwell p90", [dwell[w].p90 if w in dwell else None for w in weeks]),
            ],
            label="transit and warehouse dwell hours per week",
        ),
        "chart_dwell": charts.hbars(
            [(name, p.p90) for name, p in data.dwell], label="dwell p90 hours", unit=" h"
        ),
    }
    return render(request, "operations/dashboard.html", context)


@require_POST
def refresh_now(request: HttpRequest) -> HttpResponse:
    refresh_dashboard.delay(everything=True)
    messages.info(request, "Refresh queued: the figures update when the worker has run it.")
    return HttpResponseRedirect(reverse("operations:dashboard"))


def export(request: HttpRequest, table: str) -> HttpResponseBase:
    """A dashboard table as CSV or XLSX (`?format=`, CSV by default): docs/exports.md."""
    if table not in TABLES:
        raise Http404(table)
    fmt = request.GET.get("format") or exports.CSV
    if fmt not in exports.FORMATS:
        return HttpResponseBadRequest("format must be csv or xlsx.", content_type="text/plain")
    try:
        data = TABLES[table](request.GET.dict())
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    return exports.response(data, fmt)
