"""GET /api/v1/shipments/export: the shop's shipments, with the list's filters, as CSV or XLSX
(docs/exports.md). The writer is shipments.exports; this module says which columns a shop gets
and what of them it may see (the same claiming rule as the API's JSON, shipments.claiming, in
its ORM form: rows are read as values, not models)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Case, Expression, F, Q, When
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from config.negotiation import FastContentNegotiation
from config.renderers import CSVRenderer, FastJSONRenderer, XLSXRenderer
from config.replica import read_alias
from shipments import exports
from shipments.api import serializers as s
from shipments.api.auth import ShopExportRateThrottle, ShopKeyRateThrottle, shop_of
from shipments.api.errors import APIError, ErrorSerializer, error_responses
from shipments.api.views import ShopAPIView
from shipments.claiming import shop_may_see_q, shop_order_number_expression
from shipments.readers import selectors
from shipments.statuses import Status


def _seen(at_field: str, value: str | None = None) -> Case:
    """`value` (default: the time itself) when the shop may see the time `at_field`."""
    return Case(When(shop_may_see_q(at_field), then=F(value or at_field)), default=None)


def _event(field: str) -> Case:
    # The event that set the status, as the JSON's status_event: hidden before a claim.
    # status_event_in_month: the list's join of it (shipments.event_bounds).
    return _seen("status_event_in_month__occurred_at", f"status_event_in_month__{field}")


def _estimate(field: str) -> Case:
    # The JSON's estimated_delivery: only a complete range.
    both = Q(estimate__earliest__isnull=False, estimate__latest__isnull=False)
    return Case(When(both, then=F(f"estimate__{field}")), default=None)


# A merchant's view of a parcel, column by column, computed by the database (the claiming
# rule included: docs/claiming.md). No buyer data, no free JSON (metadata may hold anything).
COLUMNS: dict[str, str | Expression] = {
    "tracking_number": "tracking_number",
    "order_number": shop_order_number_expression(),
    "carrier": "carrier",
    "transport_mode": "transport_mode",
    "origin_country": "origin_country",
    "destination_country": "destination_country",
    "status": "status",
    "stage": "stage",
    "status_changed_at": _seen("status_changed_at"),
    "status_event_code": _event("code"),
    "status_event_at": _event("occurred_at"),
    "status_event_location": _event("location_name"),
    "status_event_location_code": _event("location_code"),
    "status_event_country": _event("country"),
    "status_event_description": _event("description"),
    "last_event_at": _seen("last_event_at"),
    "estimated_delivery_earliest": _estimate("earliest"),
    "estimated_delivery_latest": _estimate("latest"),
    "delivered_at": Case(
        When(
            Q(status=Status.DELIVERED) & shop_may_see_q("status_changed_at"),
            then="status_changed_at",
        ),
        default=None,
    ),
    "weight_kg": "weight_kg",
    "declared_value": "declared_value",
    "currency": "currency",
    "archived_at": "archived_at",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
HEADER = tuple(COLUMNS)


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
        # Bound now to the database this request reads (the replica when usable): the rows
        # are read while the response streams, after the view has returned.
        qs = selectors.shipment_list_for_shop(
            shop=shop_of(request), **s.list_filters(query.validated_data)
        ).using(read_alias())
        export = exports.Export(
            name="shipments",
            header=HEADER,
            batches=exports.keyset_rows(qs, list(COLUMNS.values())),
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
