"""GET /api/v1/shipments/export: the shop's shipments, with the list's filters, as CSV or XLSX
(docs/exports.md). The writer is shipments.exports; this module says which columns a shop gets
and what of them it may see (the same claiming rule as the API's JSON, shipments.claiming)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from config.negotiation import FastContentNegotiation
from config.renderers import CSVRenderer, FastJSONRenderer, XLSXRenderer
from shipments import exports
from shipments.api import serializers as s
from shipments.api.auth import ShopExportRateThrottle, ShopKeyRateThrottle, shop_of
from shipments.api.errors import APIError, ErrorSerializer, error_responses
from shipments.api.views import ShopAPIView
from shipments.claiming import shop_may_see, shop_order_number
from shipments.models import Shipment, ShipmentEstimate
from shipments.readers import selectors
from shipments.statuses import Status

# A merchant's view of a parcel: no buyer data, no free JSON (metadata may hold anything).
HEADER = (
    "tracking_number",
    "order_number",
    "carrier",
    "transport_mode",
    "origin_country",
    "destination_country",
    "status",
    "stage",
    "status_changed_at",
    "status_event_code",
    "status_event_at",
    "status_event_location",
    "status_event_location_code",
    "status_event_country",
    "status_event_description",
    "last_event_at",
    "estimated_delivery_earliest",
    "estimated_delivery_latest",
    "delivered_at",
    "weight_kg",
    "declared_value",
    "currency",
    "archived_at",
    "created_at",
    "updated_at",
)
# Columns a batch's single query need not load.
_DEFERRED = ("metadata", "status_event__raw", "status_event__extra")


def _visible(s: Shipment, at: datetime | None) -> datetime | None:
    return at if shop_may_see(s, at) else None


def _estimate(s: Shipment) -> tuple[datetime | None, datetime | None]:
    try:
        estimate = s.estimate
    except ShipmentEstimate.DoesNotExist:
        return None, None
    if estimate.earliest is None or estimate.latest is None:
        return None, None
    return estimate.earliest, estimate.latest


def row(s: Shipment) -> list[exports.Cell]:
    """One shipment's cells, as the API's JSON shows it (render.shipment): an unproven claim
    reads its own order number and nothing dated before its registration."""
    event = s.status_event if s.status_event_id else None
    if event is not None and not shop_may_see(s, event.occurred_at):
        event = None
    changed = _visible(s, s.status_changed_at)
    earliest, latest = _estimate(s)
    return [
        s.tracking_number,
        shop_order_number(s),
        s.carrier,
        s.transport_mode,
        s.origin_country,
        s.destination_country,
        s.status,
        s.stage,
        changed,
        event.code if event else None,
        event.occurred_at if event else None,
        event.location_name if event else None,
        event.location_code if event else None,
        event.country if event else None,
        event.description if event else None,
        _visible(s, s.last_event_at),
        earliest,
        latest,
        changed if s.status == Status.DELIVERED else None,
        s.weight_kg,
        s.declared_value,
        s.currency,
        s.archived_at,
        s.created_at,
        s.updated_at,
    ]


def shipment_rows(batches: Iterator[list[Shipment]]) -> Iterator[list[list[exports.Cell]]]:
    for batch in batches:
        yield [row(s) for s in batch]


class _ExportNegotiation(FastContentNegotiation):
    """The project's choice (`?format=` first, then Accept), but an unknown `format` is a 400
    in the API's error shape instead of DRF's bare 404."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            raise APIError(
                status_code=400,
                code="invalid",
                message="format must be csv or xlsx.",
                details={"format": ["Must be csv or xlsx."]},
            ) from None


_OK = "CSV (UTF-8 with a BOM, times in UTC ISO 8601) or XLSX (times in UTC)"
_ERRORS = {(code, "application/json"): ErrorSerializer for code in error_responses(400)}


class ShipmentExportView(ShopAPIView):
    renderer_classes = [CSVRenderer, XLSXRenderer]
    content_negotiation_class = _ExportNegotiation
    # The key's overall rate counts an export too; the export's own rate is the one reported
    # in X-RateLimit-* (the last throttle sets them).
    throttle_classes = [ShopKeyRateThrottle, ShopExportRateThrottle]

    @extend_schema(
        operation_id="shipments_export",
        parameters=[s.ShipmentExportQuerySerializer],
        responses={
            (200, exports.MEDIA_TYPES[exports.CSV]): OpenApiResponse(
                OpenApiTypes.STR, description=_OK
            ),
            (200, exports.MEDIA_TYPES[exports.XLSX]): OpenApiResponse(
                OpenApiTypes.BINARY, description=_OK
            ),
            **_ERRORS,
        },
        description="Every shipment the list's filters select, streamed as CSV (UTF-8 with a "
        "BOM, times in UTC ISO 8601) or XLSX; cells a spreadsheet would run as a formula are "
        "neutralised (docs/exports.md). Throttled per key by API_EXPORT_RATE_PER_KEY as well.",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = s.ShipmentExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        qs = selectors.shipment_list_for_shop(
            shop=shop_of(request), **s.list_filters(query.validated_data)
        ).defer(*_DEFERRED)
        export = exports.Export(
            name="shipments",
            header=HEADER,
            batches=shipment_rows(exports.keyset_batches(qs)),
        )
        assert request.accepted_renderer.format is not None
        return exports.response(export, request.accepted_renderer.format)

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Response:
        if isinstance(response, Response):
            # An error: JSON in the API's one shape, whatever format was asked for.
            request.accepted_renderer = FastJSONRenderer()
            request.accepted_media_type = FastJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
