"""Warehouses' push API: a partner POSTs a file in its feed's format; it is ingested async."""

from __future__ import annotations

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

from shipments.api.errors import APIError, error_responses
from shipments.api.render import dt
from warehouses import services
from warehouses.api.tokens import feed_for_token
from warehouses.models import Feed, FeedRun


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

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.seen += len(chunk)
        if self.seen > self.limit:
            raise services.PayloadTooLarge(f"payload exceeds the limit of {self.limit} bytes")
        return chunk


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


class FeedAPIView(APIView):
    authentication_classes = [FeedTokenAuthentication]
    permission_classes = [IsFeed]


class PayloadView(FeedAPIView):
    parser_classes = [RawBodyParser]

    @extend_schema(
        operation_id="feed_payloads_create",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={
            202: OpenApiResponse(RunSerializer, description="Stored; ingestion queued"),
            200: OpenApiResponse(RunSerializer, description="Same payload as an earlier run"),
            **error_responses(400, 404, 413, 503),
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
        limit = settings.PUSH_MAX_PAYLOAD_BYTES
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > limit:
            raise APIError(
                status_code=413,
                code="payload_too_large",
                message=f"Payloads are limited to {limit} bytes.",
            )
        if declared == 0:
            raise APIError(status_code=400, code="empty_payload", message="The body is empty.")
        name = request.headers.get("X-Filename", "")[:300] or f"push-{feed.code}"
        try:
            run = services.feed_run_create(
                feed=feed,
                content=_Capped(request.stream, limit),  # type: ignore[arg-type]
                original_name=name,
                source=FeedRun.Source.PUSH,
            )
        except services.PayloadTooLarge as exc:
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
