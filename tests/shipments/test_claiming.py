"""Claiming a parcel a feed reported first (docs/claiming.md): proof by order number or by an
operator's warehouse assignment gives the whole history; without proof the shop sees only what
happened from its registration on; a proven claim displaces an unproven one; every conflict is
kept for the operator; another shop's parcel stays a 404."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shipments import services
from shipments.models import (
    BuyerContact,
    Shipment,
    ShipmentClaim,
    Shop,
    WebhookDelivery,
    WebhookEventType,
)
from tests.conftest import FeedFactory, ShopFactory, hub_csv
from tests.shipments.conftest import ShopClient
from warehouses.models import Feed, FeedRun

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]
LIST = reverse("api-shipments")
TRACKING = WebhookEventType.TRACKING_UPDATED.value
# What the feed reported before any shop registered the parcel: its order number and a
# description with the consignee in it.
OLD = (
    "HB777,warehouse_received,2026-05-01T09:00:00+08:00,,Heihe,CNHEK,CN,"
    "Consignee Olga Ivanova +7 916 123-45-67,FEED-ORD-1,,,"
)


def detail(tn: str = "HB777") -> str:
    return reverse("api-shipment", args=[tn])


def register(shop: ShopClient, tn: str = "HB777", **data: object) -> Any:
    return shop.client.post(LIST, {"tracking_number": tn, **data}, format="json")


def later(minutes: int) -> str:
    """A local time at UTC+8, `minutes` from now: after a registration made now."""
    at = timezone.now() + timedelta(minutes=minutes)
    return at.astimezone(timezone.get_fixed_timezone(480)).isoformat(timespec="seconds")


def claim(shop: ShopClient) -> ShipmentClaim:
    return ShipmentClaim.objects.get(shipment__tracking_number="HB777", shop=shop.shop)


def _endpoint(shop: ShopClient, url: str) -> None:
    response = shop.client.post(
        reverse("api-webhook-endpoints"), {"url": url, "event_types": [TRACKING]}, format="json"
    )
    assert response.status_code == 201


def test_the_feeds_order_number_proves_the_claim_and_shows_the_whole_history(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    response = register(shop_a, order_number="FEED-ORD-1")
    assert response.status_code == 201
    body = shop_a.client.get(detail()).json()
    assert body["order_number"] == "FEED-ORD-1"
    assert body["history_from"] is None
    assert [e["code"] for e in body["timeline"]] == ["warehouse_received"]
    assert body["timeline"][0]["description"] == "Consignee Olga Ivanova +7 916 123-45-67"
    assert (claim(shop_a).proof, claim(shop_a).outcome) == ("order_number", "attached")


def test_an_operators_warehouse_assignment_proves_the_claim(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    other_warehouse = FeedFactory().warehouse
    shop_a.shop.warehouses.add(other_warehouse)  # not the parcel's warehouse: no proof
    assert register(shop_a, tn="HB777", order_number="MINE-1").status_code == 201
    assert shop_a.client.get(detail()).json()["timeline"] == []
    shop_a.shop.warehouses.add(feed.warehouse)
    # Registering again now that the proof exists lifts the limit (idempotent: 200).
    assert register(shop_a, order_number="MINE-1").status_code == 200
    body = shop_a.client.get(detail()).json()
    assert [e["code"] for e in body["timeline"]] == ["warehouse_received"]
    assert (body["order_number"], body["history_from"]) == ("FEED-ORD-1", None)
    assert (claim(shop_a).proof, claim(shop_a).outcome) == ("warehouse", "attached")


def test_without_proof_the_shop_sees_only_what_happened_from_its_registration_on(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    response = register(shop_a, order_number="GUESS-1")
    assert response.status_code == 201
    assert response.json()["order_number"] == "GUESS-1"
    assert response.json()["status_event"] is None
    ingest(
        feed,
        hub_csv(
            f"HB777,departed,{later(5)},,Heihe,CNHEK,CN,Left with Olga,FEED-ORD-1,,,",
            # A late report of something that happened before the registration.
            "HB777,picked_up,2026-04-30T09:00:00+08:00,,Heihe,CNHEK,CN,Olga's door,,,,",
        ),
    )
    body = shop_a.client.get(detail()).json()
    assert [e["code"] for e in body["timeline"]] == ["departed"]
    assert body["order_number"] == "GUESS-1"
    assert body["history_from"] is not None
    assert body["status_event"]["code"] == "departed"
    text = str(body)
    for hidden in ("FEED-ORD-1", "Consignee", "123-45-67", "Olga's door", "warehouse_received"):
        assert hidden not in text
    # The list neither shows nor finds the feed's order number.
    assert shop_a.client.get(LIST, {"order_number": "FEED-ORD-1"}).json()["results"] == []
    (row,) = shop_a.client.get(LIST, {"order_number": "GUESS-1"}).json()["results"]
    assert row["order_number"] == "GUESS-1"
    # A new order number through PATCH stays the shop's own.
    patched = shop_a.client.patch(detail(), {"order_number": "MINE-2"}, format="json").json()
    assert patched["order_number"] == "MINE-2"
    assert Shipment.objects.get(tracking_number="HB777").order_number == "FEED-ORD-1"
    assert (claim(shop_a).proof, claim(shop_a).outcome) == ("none", "limited")


def test_webhooks_of_an_unproven_claim_carry_new_events_only_and_its_own_order_number(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Any
) -> None:
    ingest(feed, hub_csv(OLD))
    register(shop_a, order_number="GUESS-1")
    _endpoint(shop_a, receiver.url)
    # An old event reported late: the shop is not told about it.
    ingest(feed, hub_csv("HB777,picked_up,2026-04-30T09:00:00+08:00,,,CNHEK,CN,Olga,,,,"))
    assert not WebhookDelivery.objects.exists()
    ingest(feed, hub_csv(f"HB777,departed,{later(5)},,,CNHEK,CN,,,,,"))
    (row,) = WebhookDelivery.objects.all()
    assert row.data["event"]["code"] == "departed"
    assert row.data["order_number"] == "GUESS-1"


def test_a_proven_claim_displaces_an_unproven_one_which_the_operator_sees(
    shop_a: ShopClient, shop_b: ShopClient, feed: Feed, ingest: Ingest, receiver: Any
) -> None:
    ingest(feed, hub_csv(OLD))
    assert register(shop_a, order_number="GUESS-1", metadata={"a": "secret"}).status_code == 201
    _endpoint(shop_a, receiver.url)
    ingest(feed, hub_csv(f"HB777,departed,{later(5)},,,CNHEK,CN,,,,,"))
    (pending,) = WebhookDelivery.objects.all()
    response = register(shop_b, order_number="FEED-ORD-1", metadata={"b": 1})
    assert response.status_code == 201
    assert response.json()["metadata"] == {"b": 1}
    body = shop_b.client.get(detail()).json()
    assert [e["code"] for e in body["timeline"]] == ["warehouse_received", "departed"]
    assert body["order_number"] == "FEED-ORD-1"
    # The displaced shop: the parcel is not its any more, and it is not told more about it.
    assert shop_a.client.get(detail()).status_code == 404
    pending.refresh_from_db()
    assert pending.state == "failed" and "displaced" in pending.last_error
    # ... and the endpoint's replay of its failed deliveries does not send it.
    replayed = shop_a.client.post(
        reverse("api-webhook-endpoint-enable", args=[pending.endpoint_id])
    )
    assert replayed.status_code == 200
    pending.refresh_from_db()
    assert pending.state == "failed"
    assert (claim(shop_a).outcome, claim(shop_b).outcome) == ("displaced", "attached")
    # The displaced shop registering again is refused like any other shop.
    assert register(shop_a, order_number="GUESS-1").status_code == 409
    assert claim(shop_a).outcome == "refused"


def test_an_unproven_claim_stands_against_another_unproven_one(
    shop_a: ShopClient, shop_b: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    assert register(shop_a).status_code == 201
    response = register(shop_b, order_number="GUESS-2")
    assert response.status_code == 409
    assert "Shop A" not in response.content.decode()
    assert Shipment.objects.get(tracking_number="HB777").shop == shop_a.shop
    assert (claim(shop_b).proof, claim(shop_b).outcome) == ("none", "refused")
    assert claim(shop_b).order_number == "GUESS-2"


def test_a_refused_registration_naming_a_buyer_is_recorded_and_stores_no_buyer(
    shop_a: ShopClient, shop_b: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    assert register(shop_a).status_code == 201
    refused = register(shop_b, order_number="GUESS-3", buyer_email="buyer@example.com")
    assert refused.status_code == 409
    # The operator still sees the refusal (a transaction around registration and buyer dropped it).
    assert (claim(shop_b).outcome, claim(shop_b).order_number) == ("refused", "GUESS-3")
    assert not BuyerContact.objects.filter(shipment__tracking_number="HB777").exists()


def test_a_proven_holder_keeps_the_parcel_against_another_proof(
    shop_a: ShopClient, shop_b: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    assert register(shop_a, order_number="FEED-ORD-1").status_code == 201
    assert register(shop_b, order_number="FEED-ORD-1").status_code == 409
    assert (claim(shop_b).proof, claim(shop_b).outcome) == ("order_number", "refused")
    assert Shipment.objects.get(tracking_number="HB777").shop == shop_a.shop


def test_a_parcel_a_shop_registered_first_is_its_own_and_another_gets_404(
    shop_a: ShopClient, shop_b: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    assert register(shop_a, order_number="A-1").status_code == 201
    ingest(feed, hub_csv(OLD))
    assert [e["code"] for e in shop_a.client.get(detail()).json()["timeline"]] == [
        "warehouse_received"
    ]
    assert shop_b.client.get(detail()).status_code == 404
    assert register(shop_b, order_number="FEED-ORD-1").status_code == 409
    assert not ShipmentClaim.objects.filter(shop=shop_a.shop).exists()


def test_the_operator_finds_unproven_claims_and_approves_one(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv(OLD))
    register(shop_a, order_number="GUESS-1")
    ingest(feed, hub_csv("HB888,warehouse_received,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,"))
    admin = Client()
    admin.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    changelist = reverse("admin:shipments_shipment_changelist")
    page = admin.get(changelist, {"claim": "unproven"}).content.decode()
    assert "HB777" in page and "HB888" not in page
    claims = admin.get(reverse("admin:shipments_shipmentclaim_changelist")).content.decode()
    assert "HB777" in claims
    shipment = Shipment.objects.get(tracking_number="HB777")
    admin.post(changelist, {"action": "approve_claim", "_selected_action": [shipment.pk]})
    body = shop_a.client.get(detail()).json()
    assert [e["code"] for e in body["timeline"]] == ["warehouse_received"]
    assert body["order_number"] == "FEED-ORD-1"
    assert (claim(shop_a).proof, claim(shop_a).outcome) == ("operator", "attached")


def _race(number: str) -> tuple[Shop, Shop]:
    """A guessing shop and the owner register the same feed parcel at the same moment."""
    guesser, owner = ShopFactory(), ShopFactory()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(shop: Shop, order_number: str) -> None:
        try:
            barrier.wait()
            services.shipment_register(shop=shop, tracking_number=number, order_number=order_number)
        except services.TrackingNumberUnavailable:
            pass
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(guesser, "GUESS")),
        threading.Thread(target=run, args=(owner, "FEED-ORD-1")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return guesser, owner


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_end_with_the_proven_shop_whatever_the_order(
    ingest: Ingest,
) -> None:
    feed = FeedFactory()
    for attempt in range(4):
        number = f"HB77{attempt}"
        ingest(feed, hub_csv(OLD.replace("HB777", number)))
        guesser, owner = _race(number)
        shipment = Shipment.objects.get(tracking_number=number)
        assert (shipment.shop_id, shipment.claim_limited_since) == (owner.pk, None)
        outcomes = dict(
            ShipmentClaim.objects.filter(shipment=shipment).values_list("shop_id", "outcome")
        )
        assert outcomes[owner.pk] == "attached"
        assert outcomes[guesser.pk] in ("displaced", "refused")
