"""Shops authenticate with `Authorization: Api-Key <key>`; the key resolves the shop."""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings
from drf_spectacular.drainage import set_override
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from shipments.models import Shop, ShopAPIKey
from shipments.readers import selectors

KEYWORD = "Api-Key"

logger = logging.getLogger(__name__)


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
        if request.method not in ("GET", "HEAD"):
            return super().key_get(request, prefix)
        tracking_number = request.parser_context["kwargs"]["tracking_number"]
        api_key, detail = selectors.api_key_get_with_shipment(
            prefix=prefix, tracking_number=tracking_number
        )
        request._hub_shipment = detail  # type: ignore[attr-defined]
        return api_key


# The parent's "ApiKey" security scheme (ShopAPIKeyScheme matches subclasses): the same
# definition, so the schema generator need not warn that two classes share the name.
set_override(ShopAPIKeyAndShipmentAuthentication, "suppress_collision_warning", True)


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


class RateCounts:
    """Numbers a key's requests within a fixed window, counting in Redis (shared by every
    worker) a block at a time.

    A key far from its limit takes a block of numbers with one INCRBY and hands them out to
    its next requests in this process: at a few thousand requests a second, one Redis round
    trip per request cost a sixth of the API's throughput. A block is at most 32 numbers and at
    most 1/32 of what the key had left when this process last took some, so it shrinks to a
    single number, one INCR per request as before, within 64 requests of the limit. No number
    is handed out twice, so a key never gets more than its limit. The price is the other way:
    numbers a process took and has not used when the window ends are lost to the key (at most
    one block per process), so a key whose requests stop reaching one worker can be refused
    that much early.
    """

    BLOCK_MAX = 32
    BLOCK_SHARE = 32

    def __init__(self) -> None:
        # key -> (window, next number to hand out, last number taken)
        self._blocks: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def take(self, client: redis.Redis, key: str, window: int, limit: int, ttl: int) -> int:
        """This request's number in `key`'s `window` (1 for the window's first request)."""
        with self._lock:
            block = self._blocks.get(key)
            taken = 0
            if block is not None and block[0] == window:
                _, number, taken = block
                if number <= taken:
                    self._blocks[key] = (window, number + 1, taken)
                    return number
                if taken >= limit:
                    # Numbers only grow within a window: refused until it ends, Redis spared.
                    return taken + 1
            size = max(1, min(self.BLOCK_MAX, (limit - taken) // self.BLOCK_SHARE))
            last = int(client.incrby(f"{key}:{window}", size))
            if last == size:
                # This block opened the window. (A crash before the EXPIRE leaves one stale
                # counter: its window number is never reused.)
                client.expire(f"{key}:{window}", ttl)
            if len(self._blocks) >= 4096:
                self._blocks = {k: b for k, b in self._blocks.items() if b[0] == window}
            first = last - size + 1
            self._blocks[key] = (window, first + 1, last)
            return first


_rate_counts = RateCounts()


class KeyRateThrottle(BaseThrottle):
    """Fixed-window limit per credential, counted in Redis and shared by all workers
    (`RateCounts`). A subclass names the rate's setting ("1200/min") and the Redis key of a
    request's credential (None: not limited here).

    Sets `request.rate_limit` so the view can send X-RateLimit-* headers (`RateLimitedAPIView`).
    """

    rate_setting = ""

    def __init__(self) -> None:
        self._wait = 0.0

    def counter_key(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        key = self.counter_key(request)
        if key is None:
            return True
        rate: str = getattr(settings, self.rate_setting)
        count_text, _, period_text = rate.partition("/")
        limit = int(count_text)
        period = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period_text[:1]]
        now = time.time()
        window = int(now // period)
        try:
            count = _rate_counts.take(_redis(), f"{key}:{period}", window, limit, period + 1)
        except redis.RedisError:
            # Fail open, as the buyers' page does: a Redis outage must not take every shop's
            # integration down with it. The response then carries no X-RateLimit-* headers.
            logger.warning("API rate limit unavailable (Redis error)", exc_info=True)
            return True
        reset = max(1, int((window + 1) * period - now))
        request.rate_limit = (limit, max(0, limit - count), reset)  # type: ignore[attr-defined]
        if count > limit:
            self._wait = float(reset)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class ShopKeyRateThrottle(KeyRateThrottle):
    """API_RATE_PER_KEY per shop API key."""

    rate_setting = "API_RATE_PER_KEY"

    def counter_key(self, request: Request) -> str | None:
        if not isinstance(request.auth, ShopAPIKey):
            return None
        return f"hub:throttle:{request.auth.prefix}"


class ShopExportRateThrottle(ShopKeyRateThrottle):
    """API_EXPORT_RATE_PER_KEY exports per shop API key, besides the key's API_RATE_PER_KEY:
    one export reads what thousands of list pages would."""

    rate_setting = "API_EXPORT_RATE_PER_KEY"

    def counter_key(self, request: Request) -> str | None:
        key = super().counter_key(request)
        return None if key is None else f"{key}:export"


class RateLimitedAPIView(APIView):
    """A view throttled by a KeyRateThrottle: every answer carries X-RateLimit-* from what the
    throttle counted (the shops' API and the push API)."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        limit = getattr(request, "rate_limit", None)
        if limit is not None:
            response["X-RateLimit-Limit"] = str(limit[0])
            response["X-RateLimit-Remaining"] = str(limit[1])
            response["X-RateLimit-Reset"] = str(limit[2])
        return response


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
