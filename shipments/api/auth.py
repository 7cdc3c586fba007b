"""Shops authenticate with `Authorization: Api-Key <key>`; the key resolves the shop."""

from __future__ import annotations

import functools
import time
from typing import Any

import redis
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from shipments import selectors
from shipments.models import Shop, ShopAPIKey

KEYWORD = "Api-Key"


@functools.cache
def _redis() -> redis.Redis:
    # One connection per process, behind redis-py's lock: no pool checkout on every request.
    return redis.Redis.from_url(settings.REDIS_URL, single_connection_client=True)


class ShopAPIKeyAuthentication(BaseAuthentication):
    """Looks the key up by its prefix and checks the hash on every request: a revoked or
    expired key is refused at once (nothing is cached)."""

    def authenticate(self, request: Request) -> tuple[Shop, ShopAPIKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        key = key.strip()
        prefix, dot, _ = key.partition(".")
        if not dot or not prefix:
            raise exceptions.AuthenticationFailed("Malformed API key.")
        api_key = self.key_get(request, prefix)
        if api_key is None or not api_key.is_valid(key) or api_key.has_expired:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        return api_key.shop, api_key

    def key_get(self, request: Request, prefix: str) -> ShopAPIKey | None:
        return selectors.api_key_get(prefix=prefix)

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class ShopAPIKeyAndShipmentAuthentication(ShopAPIKeyAuthentication):
    """For reading one shipment: the key and the shipment named in the URL come back in one
    round trip (the hottest endpoint). The shipment is only handed to the view, through
    `prefetched_shipment()`, once the key's hash has been checked like any other request's."""

    def key_get(self, request: Request, prefix: str) -> ShopAPIKey | None:
        if request.method != "GET":
            return super().key_get(request, prefix)
        tracking_number = request.parser_context["kwargs"]["tracking_number"]
        api_key, detail = selectors.api_key_get_with_shipment(
            prefix=prefix, tracking_number=tracking_number
        )
        request._hub_shipment = detail  # type: ignore[attr-defined]
        return api_key


def prefetched_shipment(request: Request) -> selectors.ShipmentDetail | None:
    """The shipment ShopAPIKeyAndShipmentAuthentication read for an authenticated request."""
    assert isinstance(request.auth, ShopAPIKey)
    return request._hub_shipment  # type: ignore[attr-defined]


class IsShop(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ShopAPIKey)


def shop_of(request: Request) -> Shop:
    shop = request.user
    assert isinstance(shop, Shop)
    return shop


class ShopKeyRateThrottle(BaseThrottle):
    """Fixed-window counter per API key in Redis (one INCR: cheap and shared by all workers).

    Sets `request.rate_limit` so the view can send X-RateLimit-* headers.
    """

    def __init__(self) -> None:
        self._wait = 0.0

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, ShopAPIKey):
            return True
        rate: str = settings.API_RATE_PER_KEY
        count_text, _, period_text = rate.partition("/")
        limit = int(count_text)
        period = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period_text[:1]]
        now = time.time()
        window = int(now // period)
        key = f"hub:throttle:{request.auth.prefix}:{window}"
        # One INCR per request; only the request that opens a window sets its expiry. (A crash
        # in between leaves one stale counter: its window number is never reused.)
        client = _redis()
        count = int(client.incr(key))
        if count == 1:
            client.expire(key, period + 1)
        reset = max(1, int((window + 1) * period - now))
        request.rate_limit = (limit, max(0, limit - count), reset)  # type: ignore[attr-defined]
        if count > limit:
            self._wait = float(reset)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class ShopAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "shipments.api.auth.ShopAPIKeyAuthentication"
    match_subclasses = True
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; keys are per shop, shown once, revocable.",
        }
