"""URLconf for bench/api.py only: the real app plus a bare view for the baseline."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as app_urls


def bare(request: HttpRequest, tracking_number: str) -> JsonResponse:
    # The same single indexed lookup as the API's detail, without auth, timeline or serializers.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, status, stage, last_event_at FROM shipments_shipment"
            " WHERE tracking_number = %s",
            [tracking_number],
        )
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse({"id": row[0], "status": row[1], "stage": row[2], "at": str(row[3])})


urlpatterns = [path("bare/<str:tracking_number>", bare), *app_urls]
