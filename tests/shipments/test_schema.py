"""/api/schema/ is a valid OpenAPI document, and schemathesis against it (bounded examples):
no 5xx, responses match the schema, also for HEAD and for inputs with a NUL in every string.

`scripts/api_fuzz.sh` runs the same test with many more examples (API_FUZZ_EXAMPLES)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.shipments.conftest import ShopClient

# Loaded from the running app's /api/schema/ at collection (no database needed for the schema).
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


# What the issue asks of the API: no 5xx, and every response documented and conforming.
# (Acceptance/rejection heuristics are left out: business rules such as "this cursor was not
# handed out" or "NUL cannot be stored" are beyond what OpenAPI can express.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def _keep_connection() -> Iterator[None]:
    # Requests go straight through the WSGI app; like Django's test client, keep the test's
    # connection (and its transaction) open across requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.usefixtures("_keep_connection")
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: Any, shop_a: ShopClient) -> None:
    # Feed push endpoints are driven without a feed token: their 401 path is what is checked.
    headers = {}
    if not case.path.startswith("/api/v1/feeds/"):
        headers["Authorization"] = f"Api-Key {shop_a.key}"
    if case.headers and "Idempotency-Key" in case.headers:
        # A reused key with another body is refused (422) by design; give each call its own.
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(headers=headers, checks=CHECKS)
    if case.method == "GET":
        # Not in the schema (drf-spectacular leaves HEAD out), but every GET answers it.
        case.method = "HEAD"
        head = case.call(headers=headers)
        # (The WSGI server drops a HEAD response's body; the app still renders it.)
        assert head.status_code < 500, (case.path_parameters, case.query, head.content)
        case.method = "GET"
    _with_nul(case)
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.path_parameters, case.query, response.content)
    if case.method != "HEAD" and response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def _with_nul(case: Any) -> None:
    """A NUL in every string parameter and top-level body field (PostgreSQL cannot store it)."""
    for values in (case.path_parameters, case.query):
        for name, value in (values or {}).items():
            if isinstance(value, str):
                values[name] = value + "\x00"
    if isinstance(case.body, dict):
        case.body = {k: v + "\x00" if isinstance(v, str) else v for k, v in case.body.items()}


def test_the_schema_is_a_valid_openapi_document(client: Any) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    validate(response.json())
