"""Inputs the shops' API and the buyers' page must answer with a 4xx, never a 500 (issue 15):
HEAD, NUL characters in a path, metadata PostgreSQL cannot store or that is too large."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from shipments.models import Shipment
from tests.shipments.conftest import ShopClient

pytestmark = pytest.mark.django_db

LIST = reverse("api-shipments")


def _error(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])


@pytest.fixture
def registered(shop_a: ShopClient) -> str:
    response = shop_a.client.post(LIST, {"tracking_number": "HB001"}, format="json")
    assert response.status_code == 201
    return "/api/v1/shipments/HB001"


def test_head_answers_like_get_without_a_body(shop_a: ShopClient, registered: str) -> None:
    got = shop_a.client.get(registered)
    head = shop_a.client.head(registered)
    assert (head.status_code, head.content) == (200, b"")
    assert head["Content-Type"] == got["Content-Type"]
    missing = shop_a.client.head("/api/v1/shipments/NOPE123")
    assert (missing.status_code, missing.content) == (404, b"")
    assert shop_a.client.head(LIST).status_code == 200


def test_a_nul_in_a_tracking_number_is_a_404_in_the_error_shape(
    shop_a: ShopClient, registered: str
) -> None:
    for path in ("/api/v1/shipments/HB0%0001", "/api/v1/shipments/HB001%00/archive"):
        response = shop_a.client.get(path)
        assert response.status_code == 404
        assert _error(response) == "not_found"
    assert shop_a.client.post("/api/v1/shipments/HB001%00/archive").status_code == 404
    response = shop_a.client.patch("/api/v1/shipments/HB%001", {}, format="json")
    assert (response.status_code, _error(response)) == (404, "not_found")


def test_a_nul_in_a_query_parameter_is_a_400(shop_a: ShopClient) -> None:
    for params in ({"order_number": "A\x00B"}, {"cursor": "A\x00B"}, {"status": "\x00"}):
        response = shop_a.client.get(LIST, params)
        assert response.status_code == 400, params
        assert _error(response) in {"invalid", "invalid_cursor"}


def test_the_tracking_page_answers_404_for_a_nul_in_the_number() -> None:
    client = Client(REMOTE_ADDR="10.99.0.15")
    assert client.get("/track/AAA%00X").status_code == 404
    # The search form drops it like a space.
    search = client.get(reverse("track-search"), {"tracking_number": "aaa\x00x"})
    assert (search.status_code, search["Location"]) == (302, "/track/AAAX")


@pytest.mark.parametrize(
    "metadata",
    [
        '{"note": "a\\u0000b"}',
        '{"a\\u0000": 1}',
        '{"deep": [{"x": ["\\u0000"]}]}',
        # A lone surrogate: valid JSON, not Unicode text.
        '{"note": "\\ud800"}',
    ],
)
def test_metadata_postgresql_cannot_store_is_a_400(
    shop_a: ShopClient, registered: str, metadata: str
) -> None:
    patched = shop_a.client.patch(
        registered, f'{{"metadata": {metadata}}}', content_type="application/json"
    )
    assert (patched.status_code, _error(patched)) == (400, "invalid")
    assert "metadata" in patched.json()["error"]["details"]
    created = shop_a.client.post(
        LIST,
        f'{{"tracking_number": "HB002", "metadata": {metadata}}}',
        content_type="application/json",
    )
    assert (created.status_code, _error(created)) == (400, "invalid")
    assert Shipment.objects.get(tracking_number="HB001").metadata == {}
    assert not Shipment.objects.filter(tracking_number="HB002").exists()


def test_metadata_is_capped_by_a_setting(
    shop_a: ShopClient, registered: str, settings: Any
) -> None:
    settings.API_METADATA_MAX_BYTES = 100
    # {"n":"…"} is 8 bytes of JSON around the value; "é" is 2 bytes in UTF-8.
    fits = {"n": "é" * 46}
    assert shop_a.client.patch(registered, {"metadata": fits}, format="json").status_code == 200
    over = {"n": "é" * 46 + "x"}
    refused = shop_a.client.patch(registered, {"metadata": over}, format="json")
    assert (refused.status_code, _error(refused)) == (400, "invalid")
    assert "100 bytes" in str(refused.json()["error"]["details"]["metadata"])
    assert Shipment.objects.get(tracking_number="HB001").metadata == fits


def test_two_megabytes_of_metadata_are_refused_by_default(
    shop_a: ShopClient, registered: str
) -> None:
    huge = {"blob": "x" * 2_000_000}
    refused = shop_a.client.patch(registered, {"metadata": huge}, format="json")
    assert (refused.status_code, _error(refused)) == (400, "invalid")
    assert Shipment.objects.get(tracking_number="HB001").metadata == {}
