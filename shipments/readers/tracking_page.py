"""The buyers' public tracking page: `/track/` (search) and `/track/<tracking_number>`.

No login, so it shows only what a buyer may see: status, stage, the estimate and the timeline
with event names, places (city and country, named from the place's code: never a free-text place
field) and local times. Never the shop, order number, consignee, free-text descriptions or raw
records. Lookups are rate limited per client IP in Redis; a miss costs more than a hit, so
guessing numbers runs out of lookups quickly.

Queries per page: a hit costs two (shipment with its estimate, the unified timeline), a miss one.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_safe

from config import client_ip
from config.replica import replica_reads
from shipments.identifiers import tracking_number_clean
from shipments.models import Shipment, ShipmentEstimate
from shipments.readers import selectors
from shipments.readers.place_names import place_of_code
from shipments.readers.timeline import TimelineEntry, timeline_get
from shipments.statuses import STAGE_ORDER, Stage

logger = logging.getLogger(__name__)

STATUS_LABELS: dict[str, Promise] = {
    "pending": _("Registered"),
    "info_received": _("Info received"),
    "in_transit": _("In transit"),
    "out_for_delivery": _("Out for delivery"),
    "available_for_pickup": _("Ready for pickup"),
    "failed_attempt": _("Delivery attempt failed"),
    "delivered": _("Delivered"),
    "returned": _("Returned to sender"),
    "exception": _("Needs attention"),
    "expired": _("No recent updates"),
}

STAGE_LABELS: dict[str, Promise] = {
    Stage.FIRST_MILE: _("First mile"),
    Stage.EXPORT_CUSTOMS: _("Export customs"),
    Stage.LINE_HAUL: _("Line haul"),
    Stage.IMPORT_CUSTOMS: _("Import customs"),
    Stage.LAST_MILE: _("Last mile"),
}

EVENT_LABELS: dict[str, Promise] = {
    "info_received": _("Shipping information received"),
    "warehouse_received": _("Received at the warehouse"),
    "warehouse_dispatched": _("Dispatched from the warehouse"),
    "picked_up": _("Picked up"),
    "customs_export_submitted": _("Submitted to export customs"),
    "customs_export_cleared": _("Cleared export customs"),
    "departed": _("Departed"),
    "arrived": _("Arrived"),
    "in_transit": _("In transit"),
    "loaded": _("Loaded for transport"),
    "unloaded": _("Unloaded"),
    "border_crossed": _("Crossed the border"),
    "customs_import_submitted": _("Submitted to import customs"),
    "customs_import_cleared": _("Cleared import customs"),
    "customs_held": _("Held by import customs"),
    "customs_rejected": _("Rejected by import customs"),
    "customs_export_held": _("Held by export customs"),
    "customs_export_rejected": _("Rejected by export customs"),
    "out_for_delivery": _("Out for delivery"),
    "available_for_pickup": _("Ready for pickup"),
    "delivery_failed": _("Delivery attempt failed"),
    "delivered": _("Delivered"),
    "returning": _("Returning to sender"),
    "returned": _("Returned to sender"),
    "delayed": _("Delayed"),
    "damaged": _("Damaged"),
    "lost": _("Reported lost"),
    "exception": _("Exception"),
    "eta_updated": _("Delivery estimate updated"),
}

CONFIDENCE_LABELS: dict[str, Promise] = {
    "high": _("High confidence"),
    "medium": _("Medium confidence"),
    "low": _("Low confidence"),
}

# The countries of the hub's lanes; others show their ISO code.
COUNTRY_NAMES: dict[str, Promise] = {
    "CN": _("China"),
    "RU": _("Russia"),
    "KZ": _("Kazakhstan"),
    "BY": _("Belarus"),
    "MN": _("Mongolia"),
    "PL": _("Poland"),
    "DE": _("Germany"),
    "NL": _("Netherlands"),
    "FR": _("France"),
    "ES": _("Spain"),
    "IT": _("Italy"),
    "GB": _("United Kingdom"),
    "US": _("United States"),
    "UZ": _("Uzbekistan"),
}


def _basis_text(basis: str, samples: int) -> str:
    if basis == "lane":
        text = ngettext(
            "based on %(count)s delivery on this route",
            "based on %(count)s deliveries on this route",
            samples,
        )
    elif basis == "destination":
        text = ngettext(
            "based on %(count)s delivery to this country",
            "based on %(count)s deliveries to this country",
            samples,
        )
    else:
        text = ngettext(
            "based on %(count)s delivery on all routes",
            "based on %(count)s deliveries on all routes",
            samples,
        )
    return text % {"count": samples}


def _country(code: str) -> str:
    return str(COUNTRY_NAMES.get(code.upper(), code.upper()))


# --- language ---------------------------------------------------------------------------------


def _with_language(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`?lang=ru` switches the language (and remembers it in the language cookie); otherwise
    LocaleMiddleware has already chosen from the cookie or Accept-Language."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        lang = request.GET.get("lang", "")
        chosen = lang if lang in dict(settings.LANGUAGES) else ""
        if chosen:
            translation.activate(chosen)
            request.LANGUAGE_CODE = chosen
        response = view(request, *args, **kwargs)
        if chosen:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                chosen,
                max_age=365 * 24 * 3600,
                samesite="Lax",
            )
        response.headers.setdefault("Cache-Control", "private, no-cache")
        return response

    return wrapper


# --- rate limit -------------------------------------------------------------------------------


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@dataclass(frozen=True, slots=True)
class Allowance:
    allowed: bool
    retry_after: int


def _spend(key_ip: str, cost: int) -> Allowance:
    """Fixed one-minute window per IP in Redis: INCRBY the cost, expire with the window."""
    now = time.time()
    window = int(now // 60)
    key = f"hub:track:{key_ip}:{window}"
    retry_after = max(1, int((window + 1) * 60 - now))
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incrby(key, cost)
        pipe.expire(key, 61)
        used = int(pipe.execute()[0])
    except redis.RedisError:
        # Fail open: a Redis outage must not take the buyers' page down with it.
        logger.warning("tracking page rate limit unavailable (Redis error)", exc_info=True)
        return Allowance(True, 0)
    return Allowance(used <= settings.TRACK_RATE_PER_MINUTE, retry_after)


def _rate_limited(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(
        request,
        "tracking/rate_limited.html",
        {"retry_after": retry_after, "search_url": reverse("track-search")},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


# --- views ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageStep:
    code: str
    label: str
    state: str  # done | current | todo


@dataclass(frozen=True, slots=True)
class EventRow:
    label: str
    stage: str
    place: str
    local_time: datetime
    utc_offset: str


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def _local(at: datetime, offset_minutes: int) -> datetime:
    """Wall-clock time where it happened, naive, so templates never shift it to another zone."""
    return (at + timedelta(minutes=offset_minutes)).replace(tzinfo=None)


def _place(entry: TimelineEntry) -> str:
    """City and country, from the event's place code through the gazetteer only. The source's
    free-text place name is never shown: warehouses put consignees' names and street addresses
    in it. Without a code the gazetteer knows, the event's country alone."""
    found = place_of_code(entry.location_code) if entry.location_code else None
    city, country = found if found is not None else ("", entry.country)
    return ", ".join(part for part in (city, _country(country) if country else "") if part)


def _steps(shipment: Shipment) -> list[StageStep]:
    current = STAGE_ORDER.index(Stage(shipment.stage)) if shipment.stage in STAGE_ORDER else -1
    return [
        StageStep(
            stage.value,
            str(STAGE_LABELS[stage]),
            "done" if index < current else "current" if index == current else "todo",
        )
        for index, stage in enumerate(STAGE_ORDER)
    ]


def display_offset(entries: list[TimelineEntry]) -> int:
    """The UTC offset dates without a place of their own (the estimate) are shown in: the
    latest report's, i.e. the parcel's side of the border, which is the buyer's side once it has
    crossed; UTC before any report. Buyer emails read their local time by the same rule."""
    return entries[-1].utc_offset_minutes if entries else 0


def event_rows(entries: list[TimelineEntry]) -> list[EventRow]:
    """The timeline as the buyer reads it, newest first: names, places, local times (the page
    and the buyer emails both show these)."""
    return [
        EventRow(
            label=str(EVENT_LABELS.get(e.code, e.code.replace("_", " "))),
            stage=str(STAGE_LABELS.get(e.stage, "")),
            place=_place(e),
            local_time=_local(e.occurred_at, e.utc_offset_minutes),
            utc_offset=_offset_text(e.utc_offset_minutes),
        )
        for e in reversed(entries)
    ]


def estimate_view(shipment: Shipment, offset_minutes: int) -> dict[str, Any] | None:
    try:
        est = shipment.estimate
    except ShipmentEstimate.DoesNotExist:
        return None
    if est.earliest is None or est.latest is None:
        return None
    earliest: date = _local(est.earliest, offset_minutes).date()
    latest: date = _local(est.latest, offset_minutes).date()
    return {
        "earliest": earliest,
        "latest": latest,
        "single_day": earliest == latest,
        "confidence": est.confidence,
        "confidence_label": str(CONFIDENCE_LABELS.get(est.confidence, "")),
        "basis_text": _basis_text(est.basis, est.samples),
    }


# GET and HEAD: link checkers and uptime monitors ask with HEAD.
@require_safe
@_with_language
def track_search(request: HttpRequest) -> HttpResponse:
    # No number holds a NUL (the detail URL cannot take one): dropped like spaces.
    number = tracking_number_clean(request.GET.get("tracking_number", "").replace("\x00", ""))
    if number:
        url = reverse("track-detail", args=[number])
        return HttpResponseRedirect(url)
    return render(request, "tracking/search.html", {"search_url": reverse("track-search")})


@require_safe
@_with_language
@replica_reads
def track_detail(request: HttpRequest, tracking_number: str) -> HttpResponse:
    # Per client behind the proxies we trust (X-Forwarded-For from them only), IPv6 per /64.
    ip = client_ip.rate_limit_key(request)
    allowance = _spend(ip, 1)
    if not allowance.allowed:
        return _rate_limited(request, allowance.retry_after)
    number = tracking_number_clean(tracking_number)[:64]
    shipment = selectors.shipment_get_public(tracking_number=number)
    if shipment is None:
        # A miss costs more: enumeration runs out of lookups long before a buyer would.
        _spend(ip, settings.TRACK_UNKNOWN_COST - 1)
        return render(
            request,
            "tracking/not_found.html",
            {"number": number, "search_url": reverse("track-search")},
            status=404,
        )
    entries = timeline_get(shipment_id=shipment.pk)
    offset = display_offset(entries)
    context = {
        "number": shipment.tracking_number,
        "status": shipment.status,
        "status_label": str(STATUS_LABELS.get(shipment.status, shipment.status)),
        "steps": _steps(shipment),
        "route": " → ".join(
            _country(c) for c in (shipment.origin_country, shipment.destination_country) if c
        ),
        "estimate": estimate_view(shipment, offset),
        "events": event_rows(entries),
        "search_url": reverse("track-search"),
    }
    return render(request, "tracking/detail.html", context)
