"""Shops' API: register (single, bulk, idempotent), read, list, update, archive, errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from shipments.models import Shipment, TransportUnit, UnitMembership
from shipments.recording import shipments_recompute
from tests.conftest import FeedFactory, ShipmentFactory, WarehouseFactory, hub_csv
from tests.shipments.conftest import ShopClient
from warehouses.models import Feed, FeedRun

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]
LIST = reverse("api-shipments")
BULK = reverse("api-shipments-bulk")


def detail(tn: str) -> str:
    return reverse("api-shipment", args=[tn])


def register(client: APIClient, **data: object) -> object:
    return client.post(LIST, {"tracking_number": "HB001", **data}, format="json")


def test_registering_creates_the_shipment_and_normalises_the_tracking_number(
    shop_a: ShopClient,
) -> None:
    response = shop_a.client.post(
        LIST,
        {
            "tracking_number": " hb 001 ",
            "order_number": "ORD-1",
            "destination_country": "ru",
            "declared_value": "12.50",
            "currency": "cny",
            "weight_kg": "0.350",
            "metadata": {"sku": "A1"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["tracking_number"] == "HB001"
    assert (body["status"], body["destination_country"], body["currency"]) == (
        "pending",
        "RU",
        "CNY",
    )
    assert body["declared_value"] == "12.50"
    assert Shipment.objects.get().shop == shop_a.shop


def test_registering_twice_returns_the_existing_shipment(shop_a: ShopClient) -> None:
    first = register(shop_a.client)
    again = register(shop_a.client, order_number="OTHER")
    assert (first.status_code, again.status_code) == (201, 200)  # type: ignore[attr-defined]
    assert Shipment.objects.count() == 1


def test_an_idempotency_key_replays_the_first_response(shop_a: ShopClient) -> None:
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    first = shop_a.client.post(LIST, {"tracking_number": "HB001"}, format="json", **headers)
    again = shop_a.client.post(LIST, {"tracking_number": "HB001"}, format="json", **headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    other = shop_a.client.post(LIST, {"tracking_number": "HB002"}, format="json", **headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_a_shipment_a_feed_created_first_is_attached_with_its_history(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    ingest(feed, hub_csv("HB001,warehouse_received,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,"))
    # The proof that the parcel is the shop's (docs/claiming.md): an operator assigned the shop
    # to the feed's warehouse.
    shop_a.shop.warehouses.add(feed.warehouse)
    response = register(shop_a.client, order_number="ORD-9")
    assert response.status_code == 201  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert (body["status"], body["order_number"]) == ("in_transit", "ORD-9")
    timeline = shop_a.client.get(detail("HB001")).json()["timeline"]
    assert [e["code"] for e in timeline] == ["warehouse_received"]


def test_another_shops_tracking_number_cannot_be_registered(
    shop_a: ShopClient, shop_b: ShopClient
) -> None:
    register(shop_a.client)
    response = register(shop_b.client)
    assert response.status_code == 409  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "tracking_number_unavailable"
    assert "Shop A" not in str(error)


def test_bulk_register_reports_each_item_and_one_bad_item_fails_nothing_else(
    shop_a: ShopClient, shop_b: ShopClient
) -> None:
    register(shop_b.client, tracking_number="TAKEN1")
    register(shop_a.client, tracking_number="MINE1")
    items = [
        {"tracking_number": "NEW1"},
        {"tracking_number": "MINE1"},
        {"tracking_number": "!"},
        {"tracking_number": "TAKEN1"},
        {"tracking_number": "NEW2", "origin_country": "China"},
        {"tracking_number": "new1"},
    ]
    response = shop_a.client.post(BULK, {"items": items}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["existing"], body["failed"]) == (1, 2, 3)
    assert [r["result"] for r in body["results"]] == [
        "created",
        "existing",
        "error",
        "error",
        "error",
        "existing",
    ]
    assert body["results"][3]["error"]["code"] == "tracking_number_unavailable"
    assert "origin_country" in body["results"][4]["error"]["details"]


def test_bulk_register_refuses_more_than_the_limit(shop_a: ShopClient, settings: object) -> None:
    items = [{"tracking_number": f"TN{i:05d}"} for i in range(1001)]
    response = shop_a.client.post(BULK, {"items": items}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_detail_shows_status_milestones_and_a_merged_timeline_from_two_sources(
    shop_a: ShopClient, ingest: Ingest
) -> None:
    register(shop_a.client, origin_country="CN", destination_country="RU")
    warehouse_feed = FeedFactory(code="heihe-wh")
    carrier_feed = FeedFactory(code="carrier", warehouse=WarehouseFactory(code="carrier-wh"))
    ingest(
        warehouse_feed,
        hub_csv(
            "HB001,warehouse_received,2026-05-01T09:00:00+08:00,,Heihe bonded,CNHEK,CN,入库,,,,",
            "HB001,departed,2026-05-02T10:00:00+08:00,,Heihe,CNHEK,CN,,,,,",
        ),
    )
    ingest(
        carrier_feed,
        hub_csv(
            # the same departure, reported two minutes later by the carrier
            "HB001,departed,2026-05-02T10:02:00+08:00,,Heihe station,CNHEK,CN,,,,,",
            "HB001,border_crossed,2026-05-02T14:00:00+08:00,,Blagoveshchensk,RUBQS,RU,,,,,",
            "HB001,customs_import_cleared,2026-05-03T10:00:00+09:00,,,RUBQS,RU,,,,,",
        ),
    )
    body = shop_a.client.get(detail("hb001")).json()
    assert (body["status"], body["stage"]) == ("in_transit", "import_customs")
    assert body["status_event"]["code"] == "customs_import_cleared"
    assert body["last_event_at"] == "2026-05-03T01:00:00Z"
    assert body["estimated_delivery"] is None
    codes = [e["code"] for e in body["timeline"]]
    assert codes == ["warehouse_received", "departed", "border_crossed", "customs_import_cleared"]
    departed = body["timeline"][1]
    assert {s["feed"] for s in departed["sources"]} == {"heihe-wh", "carrier"}
    assert departed["occurred_at"] == "2026-05-02T02:00:00Z"
    assert departed["local_time"] == "2026-05-02T10:00:00+08:00"
    assert departed["location"] == {"name": "Heihe", "code": "CNHEK", "country": "CN"}
    milestones = body["milestones"]
    assert milestones["first_mile_completed"] == "2026-05-02T02:00:00Z"
    assert milestones["departed_origin_country"] == "2026-05-02T02:00:00Z"
    assert milestones["arrived_destination_country"] == "2026-05-02T06:00:00Z"
    assert milestones["import_cleared"] == "2026-05-03T01:00:00Z"
    assert milestones["delivered"] is None


def test_events_on_a_transport_unit_appear_only_while_the_parcel_was_inside(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    register(shop_a.client)
    shipment = Shipment.objects.get()
    unit = TransportUnit.objects.create(number="MSKU1234565", kind="container")
    UnitMembership.objects.create(
        unit=unit,
        shipment=shipment,
        loaded_at=datetime(2026, 5, 2, tzinfo=UTC),
        unloaded_at=datetime(2026, 5, 4, tzinfo=UTC),
    )
    ingest(
        feed,
        hub_csv(
            ",departed,2026-05-01T12:00:00Z,,Suifenhe,CNSFH,CN,,,,rail,MSKU1234565",
            ",departed,2026-05-02T12:00:00Z,,Suifenhe,CNSFH,CN,,,,rail,MSKU1234565",
            ",arrived,2026-05-04T00:00:01Z,,Malaszewicze,PLMAL,PL,,,,rail,MSKU1234565",
        ),
    )
    shipments_recompute(shipment_ids=[shipment.pk])
    body = shop_a.client.get(detail("HB001")).json()
    timeline = body["timeline"]
    assert [(e["code"], e["occurred_at"]) for e in timeline] == [
        ("departed", "2026-05-02T12:00:00Z")
    ]
    assert timeline[0]["sources"][0]["unit"] == "MSKU1234565"
    # The unit's event set the parcel's status; the detail finds it among the timeline's rows.
    assert body["status_event"]["id"] == timeline[0]["sources"][0]["event_id"]
    assert body["status_event"]["location_code"] == "CNSFH"


def test_a_status_event_outside_the_timeline_is_still_shown(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, django_assert_num_queries: Callable[..., object]
) -> None:
    # Not produced by the recorder (it applies the timeline's own membership rule); the detail
    # must stay correct anyway, at the price of one more query.
    register(shop_a.client)
    ingest(feed, hub_csv("OTHER1,arrived,2026-05-01T12:00:00Z,,Moscow,RUMOW,RU,,,,,"))
    other = Shipment.objects.get(tracking_number="OTHER1")
    Shipment.objects.filter(tracking_number="HB001").update(status_event=other.status_event_id)
    with django_assert_num_queries(2):  # type: ignore[attr-defined]
        body = shop_a.client.get(detail("HB001")).json()
    assert body["timeline"] == []
    assert body["status_event"]["id"] == other.status_event_id
    assert (body["status_event"]["code"], body["status_event"]["location_code"]) == (
        "arrived",
        "RUMOW",
    )


def _events(n: int) -> bytes:
    base = datetime(2026, 5, 1, tzinfo=UTC)
    return hub_csv(
        *(
            f"HB001,in_transit,{(base + timedelta(hours=i)).isoformat()},,,X{i % 7},CN,,,,,"
            for i in range(n)
        )
    )


@pytest.mark.parametrize("events", [1, 40])
def test_detail_takes_the_same_number_of_queries_whatever_the_number_of_events(
    shop_a: ShopClient,
    feed: Feed,
    ingest: Ingest,
    events: int,
    django_assert_num_queries: Callable[..., object],
) -> None:
    register(shop_a.client)
    ingest(feed, _events(events))
    # One statement: the key and its shop, the shipment with its estimate and its timeline (own
    # and unit events, with their sources; the status event is one of them)
    with django_assert_num_queries(1):  # type: ignore[attr-defined]
        response = shop_a.client.get(detail("HB001"))
    assert len(response.json()["timeline"]) == events


@pytest.mark.parametrize("size", [1, 30])
def test_list_takes_the_same_number_of_queries_whatever_the_page_size(
    shop_a: ShopClient, size: int, django_assert_num_queries: Callable[..., object]
) -> None:
    for i in range(35):
        ShipmentFactory(shop=shop_a.shop, tracking_number=f"L{i:04d}")
    # The key, the walk's safe point (after a refresh of pg_stat_activity, which only a
    # transaction such as the test's needs), the page.
    with django_assert_num_queries(4):  # type: ignore[attr-defined]
        response = shop_a.client.get(LIST, {"page_size": size})
    assert len(response.json()["results"]) == size


def test_list_filters(shop_a: ShopClient) -> None:
    ShipmentFactory(shop=shop_a.shop, tracking_number="A1", status="delivered", stage="last_mile")
    ShipmentFactory(shop=shop_a.shop, tracking_number="A2", destination_country="RU")
    ShipmentFactory(shop=shop_a.shop, tracking_number="A3", order_number="ORD-3")
    old = ShipmentFactory(shop=shop_a.shop, tracking_number="A4")
    Shipment.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))

    def numbers(**params: str) -> set[str]:
        response = shop_a.client.get(LIST, params)
        assert response.status_code == 200, response.json()
        return {r["tracking_number"] for r in response.json()["results"]}

    assert numbers(status="delivered") == {"A1"}
    assert numbers(stage="last_mile") == {"A1"}
    assert numbers(destination_country="ru") == {"A2"}
    assert numbers(order_number="ORD-3") == {"A3"}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert numbers(updated_since=since) == {"A1", "A2", "A3"}
    bad = shop_a.client.get(LIST, {"status": "teleported"})
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]["details"]


def test_cursor_pages_stay_stable_while_rows_change(shop_a: ShopClient) -> None:
    for i in range(7):
        ShipmentFactory(shop=shop_a.shop, tracking_number=f"C{i}")
    seen: list[str] = []
    response = shop_a.client.get(LIST, {"page_size": 3, "ordering": "updated_at"})
    first = response.json()
    seen += [r["tracking_number"] for r in first["results"]]
    # A row on the first page changes: in ascending order it comes round again, nobody is skipped.
    Shipment.objects.filter(tracking_number=seen[0]).update(updated_at=timezone.now())
    url = first["next"]
    while url:
        page = shop_a.client.get(url).json()
        seen += [r["tracking_number"] for r in page["results"]]
        url = page["next"]
    assert set(seen) == {f"C{i}" for i in range(7)}
    assert len(seen) == 8 and seen[-1] == seen[0]
    bad = shop_a.client.get(LIST, {"cursor": "not-a-cursor"})
    assert bad.json()["error"]["code"] == "invalid_cursor"


def test_archive_and_metadata_update(shop_a: ShopClient) -> None:
    register(shop_a.client, metadata={"a": 1})
    patched = shop_a.client.patch(
        detail("HB001"), {"metadata": {"b": 2}, "order_number": "O-2"}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["metadata"], patched.json()["order_number"]) == ({"b": 2}, "O-2")
    archived = shop_a.client.post(reverse("api-shipment-archive", args=["HB001"]))
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    listed = shop_a.client.get(LIST, {"archived": "true"}).json()["results"]
    assert [r["tracking_number"] for r in listed] == ["HB001"]


def test_errors_share_one_shape_and_throttling_headers_are_sent(
    shop_a: ShopClient, settings: object
) -> None:
    missing = shop_a.client.get(detail("NOPE"))
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": None}
    }
    assert int(missing["X-RateLimit-Limit"]) == 100000
    anonymous = APIClient().get(LIST)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == "Api-Key"


def test_requests_over_the_rate_are_refused_with_retry_after(
    shop_a: ShopClient, settings: object
) -> None:
    settings.API_RATE_PER_KEY = "2/min"  # type: ignore[attr-defined]
    codes = [shop_a.client.get(LIST).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = shop_a.client.get(LIST)
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Remaining"] == "0"


def test_a_revoked_key_is_refused_at_once(shop_a: ShopClient) -> None:
    assert shop_a.client.get(LIST).status_code == 200
    shop_a.api_key.revoked = True
    shop_a.api_key.save()
    response = shop_a.client.get(LIST)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_detail_shows_the_shipment_exactly_as_the_list_does(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    # The detail builds its shipment from one raw row (not the ORM's compiler): every field,
    # the JSON metadata and the decimals included, must read as the list shows them.
    register(
        shop_a.client,
        order_number="ORD-7",
        declared_value="12.50",
        currency="CNY",
        weight_kg="0.350",
        metadata={"sku": "A1", "lines": [1, 2], "gift": True},
    )
    ingest(feed, hub_csv("HB001,departed,2026-05-02T10:00:00+08:00,,Heihe,CNHEK,CN,,,,,"))
    body = shop_a.client.get(detail("HB001")).json()
    listed = shop_a.client.get(LIST).json()["results"]
    assert len(listed) == 1
    assert {k: v for k, v in body.items() if k not in ("milestones", "timeline")} == listed[0]
    assert body["metadata"] == {"sku": "A1", "lines": [1, 2], "gift": True}
    assert body["status_event"]["code"] == "departed"
