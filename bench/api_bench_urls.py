"""URLconf for bench/api.py only: the real app plus a bare view for the baseline."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.db import prepared_cursor
from config.urls import urlpatterns as app_urls
from shipments.readers.selectors import KEY_AND_SHIPMENT_SQL


def bare(request: HttpRequest, tracking_number: str) -> JsonResponse:
    # The API detail's single statement (key, shop, shipment, estimate, timeline), prepared the
    # same way, without checking the key, throttling, merging the timeline or serializing.
    prefix = request.headers.get("Authorization", "").partition(" ")[2].partition(".")[0]
    with prepared_cursor() as cursor:
        cursor.execute(KEY_AND_SHIPMENT_SQL, {"prefix": prefix, "tn": tracking_number})
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse({"shop": row[5], "events": len(row[-1] or [])})


urlpatterns = [path("bare/<str:tracking_number>", bare), *app_urls]
