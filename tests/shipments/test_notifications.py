"""Buyer notifications (issue 17): the shop's settings and the buyer's email through the API,
the moments the recorder writes in the status change's own statement, and where the email never
appears (lists, the public page). Sending over SMTP: test_notifications_smtp.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shipments.models import (
    BuyerContact,
    NotificationMessage,
    NotificationMoment,
    Shipment,
    ShipmentEstimate,
)
from shipments.notifications import services
from tests.conftest import FeedFactory, hub_csv
from tests.shipments.conftest import ShopClient
from warehouses.models import Feed, FeedRun

Ingest = Callable[..., FeedRun]
EMAIL = "buyer.ivanova@example.com"


def _register(shop: ShopClient, number: str, **buyer: Any) -> None:
    answer = shop.client.post(
        "/api/v1/shipments", {"tracking_number": number, **buyer}, format="json"
    )
    assert answer.status_code == 201, answer.content


def _moments(number: str) -> list[str]:
    return list(
        NotificationMoment.objects.filter(shipment__tracking_number=number)
        .order_by("id")
        .values_list("moment", flat=True)
    )


def test_settings_through_the_api_start_off_and_keep_what_is_not_sent(
    shop_a: ShopClient, shop_b: ShopClient
) -> None:
    first = shop_a.client.get("/api/v1/notifications/settings")
    assert first.status_code == 200
    assert first.json()["enabled"] is False
    assert first.json()["updated_at"] is None
    changed = shop_a.client.patch(
        "/api/v1/notifications/settings",
        {"enabled": True, "moments": ["delivered", "shipped"], "brand_color": "#aa3300"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    # Kept in the vocabulary's order, whatever order they came in.
    assert body["moments"] == ["shipped", "delivered"]
    assert (body["enabled"], body["brand_color"], body["default_language"]) == (
        True,
        "#aa3300",
        "en",
    )
    again = shop_a.client.patch(
        "/api/v1/notifications/settings", {"default_language": "ru"}, format="json"
    )
    assert again.json()["moments"] == ["shipped", "delivered"]
    assert again.json()["default_language"] == "ru"
    # Another shop's settings are its own.
    assert shop_b.client.get("/api/v1/notifications/settings").json()["enabled"] is False


def test_bad_settings_are_refused_with_the_field_named(shop_a: ShopClient) -> None:
    for payload, field in (
        ({"moments": ["shipped", "teleported"]}, "moments"),
        ({"brand_color": "red"}, "brand_color"),
        ({"default_language": "de"}, "default_language"),
    ):
        answer = shop_a.client.patch("/api/v1/notifications/settings", payload, format="json")
        assert answer.status_code == 400, payload
        assert field in answer.content.decode(), answer.content


def test_the_buyer_email_is_only_in_the_detail_read_that_asks_for_it(
    shop_a: ShopClient, shop_b: ShopClient
) -> None:
    _register(shop_a, "NB001", buyer_email=EMAIL, buyer_language="ru")
    listed = shop_a.client.get("/api/v1/shipments")
    assert listed.status_code == 200
    assert "NB001" in listed.content.decode()
    assert EMAIL not in listed.content.decode()
    exported = shop_a.client.get("/api/v1/shipments/export?format=csv")
    assert exported.status_code == 200
    text = b"".join(exported.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert "NB001" in text and EMAIL not in text
    detail = shop_a.client.get("/api/v1/shipments/NB001")
    assert EMAIL not in detail.content.decode()
    assert "buyer" not in detail.json()
    asked = shop_a.client.get("/api/v1/shipments/NB001?include=buyer")
    assert asked.json()["buyer"] == {
        "email": EMAIL,
        "language": "ru",
        "notify": None,
        "unsubscribed": False,
    }
    # Another shop: 404, for the read and for a change of the buyer.
    assert shop_b.client.get("/api/v1/shipments/NB001?include=buyer").status_code == 404
    stolen = shop_b.client.patch(
        "/api/v1/shipments/NB001", {"buyer_email": "thief@example.com"}, format="json"
    )
    assert stolen.status_code == 404
    assert BuyerContact.objects.get(shipment__tracking_number="NB001").email == EMAIL


def test_a_patch_changes_or_removes_the_buyer(shop_a: ShopClient) -> None:
    _register(shop_a, "NB002", buyer_email=EMAIL)
    answer = shop_a.client.patch(
        "/api/v1/shipments/NB002",
        {"buyer_language": "zh-hans", "notify_buyer": False},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    contact = BuyerContact.objects.get(shipment__tracking_number="NB002")
    assert (contact.email, contact.language, contact.notify) == (EMAIL, "zh-hans", False)
    assert (
        shop_a.client.patch(
            "/api/v1/shipments/NB002", {"buyer_email": None}, format="json"
        ).status_code
        == 200
    )
    assert not BuyerContact.objects.filter(shipment__tracking_number="NB002").exists()
    bad = shop_a.client.patch("/api/v1/shipments/NB002", {"buyer_email": "nope"}, format="json")
    assert bad.status_code == 400


def test_the_public_page_never_shows_the_buyer_email(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    _register(shop_a, "NB003", buyer_email=EMAIL)
    ingest(feed, hub_csv("NB003,departed,2026-05-02T10:00:00+08:00,,Heihe,CNHEK,CN,,,,,"))
    page = Client().get("/track/NB003")
    assert page.status_code == 200
    assert EMAIL not in page.content.decode()
    assert "ivanova" not in page.content.decode()


def test_the_recorder_writes_each_chosen_moment_once_for_a_shipment_with_a_buyer(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    services.shop_notification_settings_update(
        shop=shop_a.shop, enabled=True, moments=["shipped", "customs_cleared", "delivered"]
    )
    _register(shop_a, "NM001", buyer_email=EMAIL)
    _register(shop_a, "NM002")  # no buyer email: nothing to write
    _register(shop_a, "NM003", buyer_email="other@example.com", notify_buyer=False)
    for number in ("NM001", "NM002", "NM003"):
        ingest(
            feed, hub_csv(f"{number},warehouse_received,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,")
        )
        ingest(feed, hub_csv(f"{number},departed,2026-05-02T10:00:00+08:00,,,CNHEK,CN,,,,,"))
        # customs_import_cleared is chosen; out_for_delivery is not.
        ingest(
            feed,
            hub_csv(
                f"{number},customs_import_cleared,2026-05-05T10:00:00+03:00,,,RUMOW,RU,,,,,",
            ),
        )
        ingest(
            feed, hub_csv(f"{number},out_for_delivery,2026-05-06T09:00:00+03:00,,,RUMOW,RU,,,,,")
        )
        ingest(feed, hub_csv(f"{number},delivered,2026-05-06T15:00:00+03:00,,,RUMOW,RU,,,,,"))
    assert _moments("NM001") == ["shipped", "customs_cleared", "delivered"]
    assert _moments("NM002") == []
    assert _moments("NM003") == []
    # The same events from another feed: a status recomputed, no moment twice.
    other = FeedFactory()
    ingest(other, hub_csv("NM001,delivered,2026-05-06T15:01:00+03:00,,,RUMOW,RU,,,,,"))
    assert _moments("NM001") == ["shipped", "customs_cleared", "delivered"]


def test_a_batch_costs_the_same_queries_with_or_without_a_buyer(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    services.shop_notification_settings_update(shop=shop_a.shop, enabled=True)
    _register(shop_a, "NQ001", buyer_email=EMAIL)
    _register(shop_a, "NQ002")
    counts = []
    for number in ("NQ001", "NQ002"):
        with CaptureQueriesContext(connection) as queries:
            ingest(feed, hub_csv(f"{number},departed,2026-05-02T10:00:00+08:00,,,CNHEK,CN,,,,,"))
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert _moments("NQ001") == ["shipped"]
    assert _moments("NQ002") == []


def test_running_late_is_written_once_when_the_p80_passed_without_delivery(
    shop_a: ShopClient, feed: Feed, ingest: Ingest
) -> None:
    services.shop_notification_settings_update(shop=shop_a.shop, enabled=True)
    _register(shop_a, "NL001", buyer_email=EMAIL)
    _register(shop_a, "NL002", buyer_email=EMAIL)
    for number in ("NL001", "NL002"):
        ingest(feed, hub_csv(f"{number},departed,2026-05-02T10:00:00+08:00,,,CNHEK,CN,,,,,"))
    now = timezone.now()
    for number, latest in (("NL001", now - timedelta(hours=1)), ("NL002", now + timedelta(days=2))):
        ShipmentEstimate.objects.update_or_create(
            shipment=Shipment.objects.get(tracking_number=number),
            defaults={
                "stage": "line_haul",
                "stage_entered_at": now - timedelta(days=10),
                "earliest": latest - timedelta(days=1),
                "latest": latest,
            },
        )
    assert services.running_late_enqueue() == 1
    assert services.running_late_enqueue() == 0
    assert _moments("NL001") == ["shipped", "running_late"]
    assert _moments("NL002") == ["shipped"]


def test_retention_erases_the_buyer_email_of_a_long_delivered_shipment(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, settings: Any
) -> None:
    settings.NOTIFY_RETENTION_DAYS = 30
    _register(shop_a, "NR001", buyer_email=EMAIL)
    _register(shop_a, "NR002", buyer_email=EMAIL)
    for number in ("NR001", "NR002"):
        ingest(feed, hub_csv(f"{number},delivered,2026-05-06T15:00:00+03:00,,,RUMOW,RU,,,,,"))
    Shipment.objects.filter(tracking_number="NR001").update(
        status_changed_at=timezone.now() - timedelta(days=31)
    )
    assert services.buyer_contacts_expire() == 1
    assert list(BuyerContact.objects.values_list("shipment__tracking_number", flat=True)) == [
        "NR002"
    ]


def test_the_admin_shows_what_was_sent_to_whom_and_why(
    shop_a: ShopClient, admin_client: Client
) -> None:
    _register(shop_a, "NA001", buyer_email=EMAIL)
    shipment = Shipment.objects.get(tracking_number="NA001")
    NotificationMessage.objects.create(
        message_id="<m1@hub.test>",
        shipment=shipment,
        shop=shop_a.shop,
        recipient=EMAIL,
        email_hash="h",
        language="ru",
        moments=["shipped", "customs_held"],
        state="failed",
        attempts=8,
        last_error="SMTPServerDisconnected: gone",
    )
    NotificationMessage.objects.create(
        message_id="<m2@hub.test>",
        shipment=shipment,
        shop=shop_a.shop,
        recipient=EMAIL,
        email_hash="h",
        language="ru",
        moments=["out_for_delivery"],
        note="quiet hours in the buyer's local time: waits until 2026-05-07 05:00 UTC",
    )
    page = admin_client.get("/admin/shipments/notificationmessage/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "shipped, customs_held" in html and "Failed (gave up)" in html
    assert EMAIL in html and "waits until 2026-05-07 05:00 UTC" in html
    detail = admin_client.get(
        f"/admin/shipments/notificationmessage/"
        f"{NotificationMessage.objects.get(message_id='<m1@hub.test>').pk}/change/"
    )
    assert "SMTPServerDisconnected: gone" in detail.content.decode()


def test_the_bulk_register_takes_each_items_buyer(shop_a: ShopClient) -> None:
    answer = shop_a.client.post(
        "/api/v1/shipments/bulk",
        {
            "items": [
                {"tracking_number": "NBULK1", "buyer_email": EMAIL, "buyer_language": "zh-hans"},
                {"tracking_number": "NBULK2"},
                {"tracking_number": "NBULK3", "buyer_email": "not-an-address"},
            ]
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    assert [r["result"] for r in answer.json()["results"]] == ["created", "created", "error"]
    assert "buyer_email" in answer.json()["results"][2]["error"]["details"]
    assert EMAIL not in answer.content.decode()
    assert list(BuyerContact.objects.values_list("shipment__tracking_number", "language")) == [
        ("NBULK1", "zh-hans")
    ]
