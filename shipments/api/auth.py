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

from shipments.models import Shop, ShopAPIKey

KEYWORD = "Api-Key"


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


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
        api_key = (
            ShopAPIKey.objects.select_related("shop").filter(prefix=prefix, revoked=False).first()
        )
        if api_key is None or not api_key.is_valid(key) or api_key.has_expired:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        return api_key.shop, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


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
        # One round trip: INCR and set the expiry of a fresh window.
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, period + 1)
        count = int(pipe.execute()[0])
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
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; keys are per shop, shown once, revocable.",
        }
