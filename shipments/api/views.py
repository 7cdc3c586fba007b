"""The shops' API: thin views (validate, call one service or selector, render)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from config.outbound import UnsafeTarget
from config.replica import SAFE_METHODS, reads_from_replica
from shipments import services, webhooks
from shipments.api import paging, render
from shipments.api import serializers as s
from shipments.api.auth import (
    IsShop,
    RateLimitedAPIView,
    ShopAPIKeyAndShipmentAuthentication,
    ShopAPIKeyAuthentication,
    ShopKeyRateThrottle,
    prefetched_shipment,
    shop_of,
)
from shipments.api.errors import APIError, error_responses
from shipments.models import Shipment, WebhookEndpoint
from shipments.notifications import services as notifications
from shipments.readers import selectors

NOT_FOUND = "Not found."


class ShopAPIView(RateLimitedAPIView):
    authentication_classes = [ShopAPIKeyAuthentication]
    permission_classes = [IsShop]
    throttle_classes = [ShopKeyRateThrottle]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # The shops' reads (the key's lookup included) may go to a streaming replica, unless
        # this key has written something the replica has not replayed yet (config/replica.py).
        if request.method not in SAFE_METHODS:
            return super().dispatch(request, *args, **kwargs)
        with reads_from_replica(request):
            return super().dispatch(request, *args, **kwargs)


def _shipment_or_404(request: Request, tracking_number: str) -> Shipment:
    shipment = selectors.shipment_get_for_shop(
        shop=shop_of(request), tracking_number=tracking_number
    )
    if shipment is None:
        raise NotFound(NOT_FOUND)
    return shipment


def _unavailable(number: str) -> APIError:
    return APIError(
        status_code=status.HTTP_409_CONFLICT,
        code="tracking_number_unavailable",
        message=f"Tracking number {number} cannot be registered by this shop.",
    )


# --- shipments ----------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Replays the first response for the same key (kept 24 hours).",
)


class ShipmentCollectionView(ShopAPIView):
    @extend_schema(
        operation_id="shipments_list",
        parameters=[s.ShipmentListQuerySerializer],
        responses={200: s.ShipmentPageSerializer, **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        # A plain dict, not the QueryDict: DRF would read `?updated_since=` as "not given".
        query = s.ShipmentListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        qs = selectors.shipment_list_for_shop(shop=shop_of(request), **s.list_filters(q))
        found = paging.page(qs, ordering=q["ordering"], size=q["page_size"], cursor=q.get("cursor"))
        next_url = None
        if found.next_cursor:
            params = request.query_params.copy()
            params["cursor"] = found.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(
            {
                "results": [render.shipment(r) for r in found.rows],
                "next": next_url,
                "next_cursor": found.next_cursor,
                "resume_cursor": found.resume_cursor,
            }
        )

    @extend_schema(
        operation_id="shipments_register",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.ShipmentRegisterSerializer,
        responses={
            201: OpenApiResponse(s.ShipmentSerializer, description="Registered (or attached)"),
            200: OpenApiResponse(s.ShipmentSerializer, description="Already registered"),
            **error_responses(400, 409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        shop = shop_of(request)
        key = request.headers.get("Idempotency-Key", "").strip()
        fingerprint = ""
        if key:
            fingerprint = services.request_fingerprint(
                method="POST",
                path=request.path,
                body=json.dumps(request.data, sort_keys=True, default=str).encode(),
            )
            stored = services.idempotency_lookup(shop=shop, key=key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise APIError(
                        status_code=422,
                        code="idempotency_key_reused",
                        message="This Idempotency-Key was used with a different request.",
                    )
                return Response(stored.body, status=stored.status_code)
        data = s.ShipmentRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            registration = notifications.shipment_register_with_buyer(
                shop=shop, **data.validated_data
            )
        except services.TrackingNumberUnavailable as exc:
            raise _unavailable(str(exc)) from None
        code = status.HTTP_201_CREATED if registration.is_new_for_shop else status.HTTP_200_OK
        body = render.shipment(registration.shipment)
        if key:
            stored = services.idempotency_store(
                shop=shop, key=key, fingerprint=fingerprint, status_code=code, body=body
            )
            return Response(stored.body, status=stored.status_code)
        return Response(body, status=code)


class ShipmentBulkView(ShopAPIView):
    @extend_schema(
        operation_id="shipments_register_bulk",
        request=s.BulkRegisterSerializer,
        responses={200: s.BulkResultSerializer, **error_responses(400)},
    )
    def post(self, request: Request) -> Response:
        shop = shop_of(request)
        envelope = s.BulkRegisterSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        results: list[dict[str, Any]] = []
        counts = {"created": 0, "existing": 0, "failed": 0}
        for index, item in enumerate(envelope.validated_data["items"]):
            data = s.ShipmentRegisterSerializer(data=item)
            if not data.is_valid():
                counts["failed"] += 1
                results.append(
                    {
                        "index": index,
                        "result": "error",
                        "tracking_number": str(item.get("tracking_number") or "") or None,
                        "error": {"code": "invalid", "details": data.errors},
                    }
                )
                continue
            try:
                registration = notifications.shipment_register_with_buyer(
                    shop=shop, **data.validated_data
                )
            except services.TrackingNumberUnavailable as exc:
                counts["failed"] += 1
                results.append(
                    {
                        "index": index,
                        "result": "error",
                        "tracking_number": str(exc),
                        "error": {"code": "tracking_number_unavailable", "details": None},
                    }
                )
                continue
            outcome = "created" if registration.is_new_for_shop else "existing"
            counts[outcome] += 1
            results.append(
                {
                    "index": index,
                    "result": outcome,
                    "tracking_number": registration.shipment.tracking_number,
                    "error": None,
                }
            )
        return Response({**counts, "results": results})


class ShipmentDetailView(ShopAPIView):
    authentication_classes = [ShopAPIKeyAndShipmentAuthentication]

    @extend_schema(
        operation_id="shipments_retrieve",
        parameters=[
            OpenApiParameter(
                "include",
                OpenApiTypes.STR,
                enum=["buyer"],
                description="`buyer`: add the buyer's notification contact (personal data, "
                "never in lists).",
            )
        ],
        responses={200: s.ShipmentDetailWithBuyerSerializer, **error_responses(404)},
    )
    def get(self, request: Request, tracking_number: str) -> Response:
        found = prefetched_shipment(request)
        if found is None:
            raise NotFound(NOT_FOUND)
        body = render.shipment_detail(*found)
        if "buyer" in request.query_params.get("include", "").split(","):
            body["buyer"] = notifications.buyer_view(shipment=found[0])
        return Response(body)

    @extend_schema(
        operation_id="shipments_update",
        request=s.ShipmentUpdateSerializer,
        responses={200: s.ShipmentSerializer, **error_responses(400, 404)},
    )
    def patch(self, request: Request, tracking_number: str) -> Response:
        shipment = _shipment_or_404(request, tracking_number)
        data = s.ShipmentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        shipment = notifications.shipment_update_with_buyer(
            shipment=shipment, shop=shop_of(request), **data.validated_data
        )
        return Response(render.shipment(shipment))


class ShipmentArchiveView(ShopAPIView):
    @extend_schema(
        operation_id="shipments_archive",
        request=None,
        responses={200: s.ShipmentSerializer, **error_responses(404)},
        description="Stop tracking: no more webhooks; the shipment stays readable.",
    )
    def post(self, request: Request, tracking_number: str) -> Response:
        shipment = _shipment_or_404(request, tracking_number)
        return Response(render.shipment(services.shipment_archive(shipment=shipment)))


# --- webhook endpoints --------------------------------------------------------------------------


def _endpoint_or_404(request: Request, endpoint_id: int) -> WebhookEndpoint:
    endpoint = selectors.webhook_endpoint_get_for_shop(
        shop=shop_of(request), endpoint_id=endpoint_id
    )
    if endpoint is None:
        raise NotFound(NOT_FOUND)
    return endpoint


def _unsafe(exc: Exception) -> APIError:
    return APIError(
        status_code=400, code="unsafe_url", message=str(exc), details={"url": [str(exc)]}
    )


class WebhookEndpointCollectionView(ShopAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_list",
        responses={200: s.WebhookEndpointSerializer(many=True), **error_responses()},
    )
    def get(self, request: Request) -> Response:
        endpoints = selectors.webhook_endpoints_for_shop(shop=shop_of(request))
        return Response([render.endpoint(e) for e in endpoints])

    @extend_schema(
        operation_id="webhook_endpoints_create",
        request=s.WebhookEndpointInputSerializer,
        responses={201: s.WebhookEndpointWithSecretSerializer, **error_responses(400)},
        description="The signing secret is in this response only (rotate to get a new one).",
    )
    def post(self, request: Request) -> Response:
        data = s.WebhookEndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            endpoint = webhooks.webhook_endpoint_create(
                shop=shop_of(request), **data.validated_data
            )
        except UnsafeTarget as exc:
            raise _unsafe(exc) from None
        return Response(
            {**render.endpoint(endpoint), "secret": endpoint.secret}, status=status.HTTP_201_CREATED
        )


class WebhookEndpointDetailView(ShopAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        responses={200: s.WebhookEndpointSerializer, **error_responses(404)},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(render.endpoint(_endpoint_or_404(request, endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_update",
        request=s.WebhookEndpointPatchSerializer,
        responses={200: s.WebhookEndpointSerializer, **error_responses(400, 404)},
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(request, endpoint_id)
        data = s.WebhookEndpointPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            endpoint = webhooks.webhook_endpoint_update(endpoint=endpoint, **data.validated_data)
        except UnsafeTarget as exc:
            raise _unsafe(exc) from None
        return Response(render.endpoint(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        responses={204: None, **error_responses(404)},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        _endpoint_or_404(request, endpoint_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateView(ShopAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        request=None,
        responses={200: s.WebhookEndpointWithSecretSerializer, **error_responses(404)},
        description="A new secret; the old one keeps signing alongside it for 24 hours.",
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = webhooks.webhook_endpoint_rotate_secret(
            endpoint=_endpoint_or_404(request, endpoint_id)
        )
        return Response({**render.endpoint(endpoint), "secret": endpoint.secret})


class WebhookEndpointEnableView(ShopAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_enable",
        request=None,
        responses={200: s.WebhookEnableResultSerializer, **error_responses(404)},
        description="Re-enable a disabled endpoint and replay its failed deliveries.",
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(request, endpoint_id)
        replayed = webhooks.webhook_endpoint_enable(endpoint=endpoint)
        return Response({**render.endpoint(endpoint), "replayed": replayed})


class WebhookEndpointLogView(ShopAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_log",
        responses={200: s.WebhookAttemptPageSerializer, **error_responses(404)},
        description="The latest 100 delivery attempts: time, status code, latency, error.",
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(request, endpoint_id)
        attempts = selectors.webhook_attempts_for_endpoint(endpoint=endpoint)[:100]
        return Response({"results": [render.attempt(a) for a in attempts]})


# --- buyer notifications ------------------------------------------------------------------------


class NotificationSettingsView(ShopAPIView):
    """The shop's buyer-notification defaults (docs/notifications.md)."""

    @extend_schema(
        operation_id="notification_settings_retrieve",
        responses={200: s.NotificationSettingsOutSerializer, **error_responses()},
    )
    def get(self, request: Request) -> Response:
        found = notifications.shop_notification_settings(shop=shop_of(request))
        return Response(render.notification_settings(found))

    @extend_schema(
        operation_id="notification_settings_update",
        request=s.NotificationSettingsSerializer,
        responses={200: s.NotificationSettingsOutSerializer, **error_responses(400)},
    )
    def patch(self, request: Request) -> Response:
        data = s.NotificationSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        updated = notifications.shop_notification_settings_update(
            shop=shop_of(request), **data.validated_data
        )
        return Response(render.notification_settings(updated))
