"""One error shape for the whole API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class APIError(exceptions.APIException):
    """An error with our own machine-readable code (e.g. `tracking_number_unavailable`)."""

    def __init__(self, *, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, APIError):
        return exc.error_code
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


logger = logging.getLogger(__name__)

# How long a client is asked to wait when the database is unreachable (a restart, a failover).
RETRY_AFTER_SECONDS = 30


def _body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": None}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down or restarting: a client that retries later will succeed.
        logger.warning("API request failed: database unavailable: %s", exc)
        return Response(
            _body("service_unavailable", "The service is briefly unavailable; retry later."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        message, details = "The request is not valid; see details.", exc.detail
    elif isinstance(exc, APIError):
        message, details = str(exc.detail), exc.details
    else:
        message, details = str(exc.detail), None
    response.data = {"error": {"code": _code(exc), "message": message, "details": details}}
    return response


class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text="Machine-readable: invalid, not_found, not_authenticated, "
        "authentication_failed, throttled, tracking_number_unavailable, idempotency_key_reused, "
        "payload_too_large, empty_payload, invalid_content_length, length_required, "
        "invalid_cursor, unsafe_url, method_not_allowed, "
        "unsupported_media_type, parse_error, service_unavailable (with Retry-After), "
        "server_error."
    )
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True, help_text="Per-field errors for `invalid`.")


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorBodySerializer()


def error_responses(*codes: int) -> dict[int, type[ErrorSerializer]]:
    """Documented error responses for an endpoint (every endpoint can answer 401 and 429)."""
    return {code: ErrorSerializer for code in sorted({*codes, 400, 401, 429, 405, 406, 415})}


HTTP_422 = status.HTTP_422_UNPROCESSABLE_ENTITY


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: an unknown URL under /api/ answers in the API's error shape."""
    if request.path.startswith("/api/"):
        body = _body("not_found", "Not found.")
        return JsonResponse(body, status=404)
    return page_not_found(request, exception or Http404())


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400 (e.g. a malformed header Django refuses before any view runs)."""
    if request.path.startswith("/api/"):
        body = _body("bad_request", "Bad request.")
        return JsonResponse(body, status=400)
    return django_bad_request(request, exception or Exception())


def internal_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unexpected error under /api/ still answers in the API's error shape (the
    exception is logged by Django's request logger)."""
    if request.path.startswith("/api/"):
        body = _body("server_error", "Internal error; it has been logged.")
        return JsonResponse(body, status=500)
    return server_error(request)
