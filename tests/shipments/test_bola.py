"""BOLA matrix: shop A's key on every endpoint that names shop B's objects answers 404."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from shipments.models import Shipment, WebhookEndpoint
from shipments.webhooks import webhook_endpoint_create
from tests.shipments.conftest import ShopClient

pytestmark = pytest.mark.django_db

ENDPOINTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("get", "api-shipment", "tn", None),
    ("patch", "api-shipment", "tn", {"metadata": {"x": 1}}),
    ("post", "api-shipment-archive", "tn", None),
    ("get", "api-webhook-endpoint", "ep", None),
    ("patch", "api-webhook-endpoint", "ep", {"description": "mine now"}),
    ("delete", "api-webhook-endpoint", "ep", None),
    ("post", "api-webhook-endpoint-rotate", "ep", None),
    ("post", "api-webhook-endpoint-enable", "ep", None),
    ("get", "api-webhook-endpoint-log", "ep", None),
]


@pytest.fixture
def b_objects(shop_b: ShopClient) -> dict[str, Any]:
    shipment = Shipment.objects.create(tracking_number="BSHIP1", shop=shop_b.shop)
    endpoint = webhook_endpoint_create(shop=shop_b.shop, url="http://127.0.0.1:9/b", event_types=[])
    return {"tn": shipment.tracking_number, "ep": endpoint.pk}


@pytest.mark.parametrize(("method", "name", "kind", "body"), ENDPOINTS)
def test_shop_a_on_shop_bs_objects_gets_404_and_nothing_changes(
    shop_a: ShopClient,
    b_objects: dict[str, Any],
    method: str,
    name: str,
    kind: str,
    body: dict[str, Any] | None,
) -> None:
    url = reverse(name, args=[b_objects[kind]])
    before_ship = list(Shipment.objects.values())
    before_ep = list(WebhookEndpoint.objects.values())
    response = getattr(shop_a.client, method)(url, body, format="json")
    assert response.status_code == 404
    # The same answer as for an object that does not exist: nothing leaks.
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": None}
    }
    assert list(Shipment.objects.values()) == before_ship
    assert list(WebhookEndpoint.objects.values()) == before_ep


@pytest.mark.parametrize(("method", "name", "kind", "body"), ENDPOINTS)
def test_a_missing_object_answers_exactly_like_another_shops(
    shop_a: ShopClient, method: str, name: str, kind: str, body: dict[str, Any] | None
) -> None:
    url = reverse(name, args=["NOSUCH1" if kind == "tn" else 999_999])
    response = getattr(shop_a.client, method)(url, body, format="json")
    assert response.status_code == 404


def test_lists_never_show_another_shops_objects(
    shop_a: ShopClient, b_objects: dict[str, Any]
) -> None:
    assert shop_a.client.get(reverse("api-shipments")).json()["results"] == []
    assert shop_a.client.get(reverse("api-webhook-endpoints")).json() == []
    assert shop_a.client.get(reverse("api-shipments"), {"order_number": ""}).status_code == 200


ALL = [
    ("get", reverse("api-shipments")),
    ("post", reverse("api-shipments")),
    ("post", reverse("api-shipments-bulk")),
    ("get", reverse("api-shipment", args=["X1"])),
    ("patch", reverse("api-shipment", args=["X1"])),
    ("post", reverse("api-shipment-archive", args=["X1"])),
    ("get", reverse("api-webhook-endpoints")),
    ("post", reverse("api-webhook-endpoints")),
    ("get", reverse("api-webhook-endpoint", args=[1])),
    ("post", reverse("api-webhook-endpoint-enable", args=[1])),
]


@pytest.mark.parametrize(("method", "url"), ALL)
def test_a_revoked_key_gets_401_on_every_endpoint(
    shop_a: ShopClient, method: str, url: str
) -> None:
    shop_a.api_key.revoked = True
    shop_a.api_key.save(update_fields=["revoked"])
    response = getattr(shop_a.client, method)(url, {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize(("method", "url"), ALL)
def test_no_key_or_a_forged_key_gets_401(shop_a: ShopClient, method: str, url: str) -> None:
    forged = shop_a.key.split(".")[0] + ".forged"
    for header in ({}, {"HTTP_AUTHORIZATION": f"Api-Key {forged}"}):
        shop_a.client.credentials(**header)
        assert getattr(shop_a.client, method)(url, {}, format="json").status_code == 401
