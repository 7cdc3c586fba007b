"""Warehouses' push API: a partner POSTs a file in its feed's format; it is ingested async."""

from __future__ import annotations

import io
from typing import IO, Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shipments.api.auth import KeyRateThrottle, RateLimitedAPIView
from shipments.api.errors import APIError, error_responses
from shipments.api.render import dt
from warehouses.api.tokens import feed_for_token
from warehouses.ingest.runs import feed_run_create
from warehouses.models import Feed, FeedRun
from warehouses.sources.payloads import PayloadTooLarge


class FeedTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <feed token>`; the token names exactly one feed."""

    def authenticate(self, request: Request) -> tuple[Feed, str] | None:
        keyword, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if keyword != "Bearer":
            return None
        feed = feed_for_token(token.strip())
        if feed is None:
            raise exceptions.AuthenticationFailed("Invalid feed token.")
        return feed, token

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class FeedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "warehouses.api.views.FeedTokenAuthentication"
    name = "FeedToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "Per-feed push token."}


class IsFeed(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, Feed)


class RawBodyParser(BaseParser):
    """Declares the accepted media types; the view streams the body itself."""

    media_type = "*/*"

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        return None


class _Capped:
    """A read-only stream that refuses to yield more than `limit` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.stream, self.limit, self.seen = stream, limit, 0
        self.head = b""

    def peek(self, size: int) -> bytes:
        """The first bytes (b"": an empty body), handed out again by the next read."""
        if not self.head and not self.seen:
            self.head = self._read(size)
        return self.head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            # A read past a peeked head may be short: every reader here loops until b"".
            return head
        return self._read(size)

    def _read(self, size: int) -> bytes:
        chunk = self.stream.read(size)
        self.seen += len(chunk)
        if self.seen > self.limit:
            raise PayloadTooLarge(f"payload exceeds the limit of {self.limit} bytes")
        return chunk


def _too_large(limit: int) -> APIError:
    return APIError(
        status_code=413, code="payload_too_large", message=f"Payloads are limited to {limit} bytes."
    )


def _body(request: Request) -> _Capped:
    """The request's body as a capped stream: with a Content-Length, or chunked
    (`Transfer-Encoding: chunked`, no length) from a server that ends the input stream at the
    body's end (`wsgi.input_terminated`, as gunicorn does). Refuses an empty body."""
    meta = request.META
    limit = settings.PUSH_MAX_PAYLOAD_BYTES
    length = meta.get("CONTENT_LENGTH", "")
    if length:
        if not (length.isascii() and length.isdigit()):
            raise APIError(
                status_code=400,
                code="invalid_content_length",
                message="Content-Length must be a number of bytes.",
            )
        if int(length) > limit:
            raise _too_large(limit)
        # DRF hands no stream for a Content-Length of 0.
        body = _Capped(request.stream or io.BytesIO(), limit)
    elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        if not meta.get("wsgi.input_terminated"):
            # This server cannot tell where a chunked body ends: reading on could hang.
            raise APIError(
                status_code=411,
                code="length_required",
                message="Send a Content-Length (this server does not take chunked bodies).",
            )
        body = _Capped(meta["wsgi.input"], limit)
    else:
        body = _Capped(io.BytesIO(), limit)
    try:
        empty = not body.peek(64 * 1024)
    except PayloadTooLarge:
        raise _too_large(limit) from None
    if empty:
        raise APIError(status_code=400, code="empty_payload", message="The body is empty.")
    return body


class RunSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    feed = serializers.CharField()
    status = serializers.ChoiceField(choices=FeedRun.Status.choices)
    duplicate_of = serializers.IntegerField(allow_null=True)
    original_name = serializers.CharField()
    payload_sha256 = serializers.CharField()
    payload_size = serializers.IntegerField()
    records = serializers.IntegerField()
    events_created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    shipments_touched = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _run(run: FeedRun, feed: Feed) -> dict[str, Any]:
    return {
        "id": run.pk,
        "feed": feed.code,
        "status": run.status,
        "duplicate_of": run.duplicate_of_id,
        "original_name": run.original_name,
        "payload_sha256": run.payload_sha256,
        "payload_size": run.payload_size,
        "records": run.records,
        "events_created": run.events_created,
        "duplicates": run.duplicates,
        "rejected": run.rejected,
        "shipments_touched": run.shipments_touched,
        "error": run.error,
        "created_at": dt(run.created_at),
        "started_at": dt(run.started_at),
        "finished_at": dt(run.finished_at),
    }


def _own_feed(request: Request, feed_code: str) -> Feed:
    feed = request.user
    # Another feed's code answers exactly like a feed that does not exist.
    if not isinstance(feed, Feed) or feed.code != feed_code:
        raise exceptions.NotFound("Not found.")
    return feed


class FeedTokenRateThrottle(KeyRateThrottle):
    """PUSH_RATE_PER_TOKEN per push token: 429 with Retry-After past it."""

    rate_setting = "PUSH_RATE_PER_TOKEN"

    def counter_key(self, request: Request) -> str | None:
        feed = request.user
        if not isinstance(feed, Feed):
            return None
        return f"hub:push-throttle:{feed.push_token_hash[:16]}"


class FeedAPIView(RateLimitedAPIView):
    authentication_classes = [FeedTokenAuthentication]
    permission_classes = [IsFeed]
    throttle_classes = [FeedTokenRateThrottle]


class PayloadView(FeedAPIView):
    parser_classes = [RawBodyParser]

    @extend_schema(
        operation_id="feed_payloads_create",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={
            202: OpenApiResponse(RunSerializer, description="Stored; ingestion queued"),
            200: OpenApiResponse(RunSerializer, description="Same payload as an earlier run"),
            **error_responses(400, 404, 411, 413, 503),
        },
        description=(
            "The body is one file in the feed's format (size-capped). Poll the run. 202 means "
            "stored: the run is ingested even if the hub's queue is briefly down (it is queued "
            "when the queue is back). 503 (with Retry-After): send it again later; a payload the "
            "hub did store is then answered as a duplicate."
        ),
    )
    def post(self, request: Request, feed_code: str) -> Response:
        feed = _own_feed(request, feed_code)
        body = _body(request)
        name = request.headers.get("X-Filename", "")[:300] or f"push-{feed.code}"
        try:
            run = feed_run_create(
                feed=feed,
                content=body,  # type: ignore[arg-type]
                original_name=name,
                source=FeedRun.Source.PUSH,
            )
        except PayloadTooLarge as exc:
            raise APIError(status_code=413, code="payload_too_large", message=str(exc)) from None
        code = status.HTTP_200_OK if run.status == FeedRun.Status.DUPLICATE else 202
        return Response(_run(run, feed), status=code)


class RunView(FeedAPIView):
    @extend_schema(
        operation_id="feed_runs_retrieve",
        responses={200: RunSerializer, **error_responses(404)},
    )
    def get(self, request: Request, feed_code: str, run_id: int) -> Response:
        feed = _own_feed(request, feed_code)
        run = FeedRun.objects.filter(feed=feed, pk=run_id).first()
        if run is None:
            raise exceptions.NotFound("Not found.")
        return Response(_run(run, feed))
