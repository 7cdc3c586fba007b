"""Webhooks: outbox written with the status change, relay to a real HTTP server, signatures,
retries with backoff, timeout, 410 and failure-count disabling, replay, SSRF refusal."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.outbound import UnsafeTarget
from shipments import relay, tasks, webhooks
from shipments.models import (
    Shipment,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from tests.conftest import hub_csv
from tests.shipments.conftest import Receiver, ShopClient
from warehouses.models import Feed, FeedRun

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]
STATUS = WebhookEventType.STATUS_CHANGED.value
TRACKING = WebhookEventType.TRACKING_UPDATED.value


# --- signatures -------------------------------------------------------------------------------


def test_the_standard_webhooks_signature_vector() -> None:
    # The published test vector of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    msg_id, ts = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    assert webhooks.signature(secret=secret, message_id=msg_id, timestamp=ts, body=body) == expected
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": expected}
    assert webhooks.signature_verify(secret=secret, headers=headers, body=body, now=ts + 10)
    assert not webhooks.signature_verify(secret=secret, headers=headers, body=body + b" ", now=ts)
    # outside the replay tolerance
    assert not webhooks.signature_verify(secret=secret, headers=headers, body=body, now=ts + 3600)


def test_secrets_are_at_least_24_random_bytes() -> None:
    secret = webhooks.secret_generate()
    assert secret.startswith("whsec_")
    assert len(webhooks._secret_bytes(secret)) >= 24
    assert secret != webhooks.secret_generate()


# --- outbox -----------------------------------------------------------------------------------


def _endpoint(shop: ShopClient, url: str, types: list[str] | None = None) -> dict[str, Any]:
    response = shop.client.post(
        reverse("api-webhook-endpoints"),
        {"url": url, "event_types": types or [STATUS]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return dict(response.json())


def _register(shop: ShopClient, tn: str = "HB001") -> None:
    response = shop.client.post(reverse("api-shipments"), {"tracking_number": tn}, format="json")
    assert response.status_code == 201


def test_a_status_change_writes_one_outbox_row_per_subscribed_endpoint(
    shop_a: ShopClient, shop_b: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _endpoint(shop_a, receiver.url, [TRACKING])
    _endpoint(shop_b, receiver.url)  # another shop's endpoint never hears about A's parcel
    ingest(
        feed,
        hub_csv(
            "HB001,picked_up,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,",
            "NOSHOP1,picked_up,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,",
        ),
    )
    rows = list(WebhookDelivery.objects.order_by("sequence"))
    assert [(r.event_type, r.sequence) for r in rows] == [(TRACKING, 1), (STATUS, 2)]
    status_row = rows[1]
    assert status_row.endpoint.shop == shop_a.shop
    assert status_row.data["status"] == "in_transit"
    assert status_row.data["previous_status"] == "pending"
    assert status_row.data["event"]["code"] == "picked_up"
    # a later event with the same status: only the every-event subscriber hears
    ingest(feed, hub_csv("HB001,departed,2026-05-02T09:00:00+08:00,,,CNHEK,CN,,,,,"))
    assert list(WebhookDelivery.objects.order_by("sequence").values_list("sequence", "event_type"))[
        2:
    ] == [(3, TRACKING)]


def test_no_outbox_rows_for_an_archived_shipment_or_a_disabled_endpoint(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a, "HB001")
    _register(shop_a, "HB002")
    endpoint = _endpoint(shop_a, receiver.url)
    shop_a.client.post(reverse("api-shipment-archive", args=["HB001"]))
    ingest(feed, hub_csv("HB001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,"))
    assert not WebhookDelivery.objects.exists()
    WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(active=False)
    ingest(feed, hub_csv("HB002,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,"))
    assert not WebhookDelivery.objects.exists()


def test_the_outbox_row_rolls_back_with_the_status_change(
    shop_a: ShopClient, receiver: Receiver
) -> None:
    from django.db import transaction

    from shipments.recording import EventInput, events_record

    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    event = EventInput(
        line=1,
        code="picked_up",
        occurred_at=timezone.now(),
        utc_offset_minutes=0,
        tz_source="explicit",
        tracking_number="HB001",
    )
    seen_inside = []

    def crash() -> None:
        with transaction.atomic():
            events_record(events=[event], feed_id=None, run_id=None, warehouse_id=None, source="t")
            seen_inside.append(WebhookDelivery.objects.count())
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash()
    assert seen_inside == [1]
    assert not WebhookDelivery.objects.exists()
    assert Shipment.objects.get().status == "pending"


# --- relay ------------------------------------------------------------------------------------


def _status_change(feed: Feed, ingest: Ingest, code: str = "picked_up", hour: int = 9) -> None:
    ingest(feed, hub_csv(f"HB001,{code},2026-05-01T{hour:02d}:00:00+08:00,,,CNHEK,CN,,,,,"))


def _due_now() -> None:
    WebhookDelivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())


def test_the_relay_delivers_a_signed_notification_to_a_real_server(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    secret = _endpoint(shop_a, receiver.url)["secret"]
    _status_change(feed, ingest)
    assert tasks.relay_webhooks() == 1
    (got,) = receiver.received
    assert webhooks.signature_verify(secret=secret, headers=got.headers, body=got.body)
    delivery = WebhookDelivery.objects.get()
    assert got.headers["webhook-id"] == delivery.webhook_id
    assert got.json["id"] == delivery.webhook_id
    assert (got.json["type"], got.json["sequence"]) == (STATUS, 1)
    assert got.json["data"]["tracking_number"] == "HB001"
    assert delivery.state == "delivered"
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200 and attempt.latency_ms >= 0
    # nothing left to send; a second pass is a no-op
    assert tasks.relay_webhooks() == 0


def test_the_claim_commits_synchronously_before_anything_is_sent(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    # Outbox rows may come from an asynchronously committed ingest batch: the claim's own
    # synchronous commit makes them durable before a notice leaves, even on a server whose
    # default is asynchronous.
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    with CaptureQueriesContext(connection) as queries:
        assert relay.webhook_deliveries_send() == 1
    statements = [q["sql"] for q in queries.captured_queries]
    sync = statements.index("SET LOCAL synchronous_commit = on")
    claim = next(i for i, sql in enumerate(statements) if "relay_leased_until = " in sql)
    assert sync < claim
    assert len(receiver.received) == 1


def test_a_failing_receiver_is_retried_with_backoff_and_the_same_id(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    receiver.behaviour = [500, 503]
    before = timezone.now()
    relay.webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    # first retry after 15-30 s (30 s base, jitter 0.5-1)
    assert timedelta(seconds=14) < delivery.next_attempt_at - before < timedelta(seconds=31)
    assert relay.webhook_deliveries_send() == 0  # not due yet
    _due_now()
    relay.webhook_deliveries_send()
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=29)
    _due_now()
    relay.webhook_deliveries_send()
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 3 and ids == {delivery.webhook_id}
    assert list(WebhookAttempt.objects.order_by("id").values_list("status_code", flat=True)) == [
        500,
        503,
        200,
    ]
    assert WebhookEndpoint.objects.get().consecutive_failures == 0


def test_backoff_grows_exponentially_and_gives_up_after_about_three_days(settings: Any) -> None:
    delays = [webhooks.retry_delay(n) for n in range(1, 16)]
    assert all(30 * 2 ** (n - 1) * 0.5 <= d for n, d in enumerate(delays[:8], start=1))
    assert max(delays) <= 12 * 3600
    total_max = sum(min(12 * 3600, 30 * 2 ** (n - 1)) for n in range(1, 17))
    assert 2.5 * 86400 < total_max < 4 * 86400


def test_a_delivery_past_the_retry_window_fails_for_good(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=3))
    receiver.default = 500
    relay.webhook_deliveries_send()
    assert WebhookDelivery.objects.get().state == "failed"


def test_a_hanging_receiver_times_out_and_is_retried(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    receiver.behaviour = ["hang"]
    relay.webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "pending"
    assert delivery.last_error.startswith("timeout")
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and 900 <= attempt.latency_ms < 2500


def test_410_gone_disables_the_endpoint_at_once_and_enable_replays(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    endpoint = _endpoint(shop_a, receiver.url, [STATUS, TRACKING])
    _status_change(feed, ingest)
    receiver.behaviour = [410]
    relay.webhook_deliveries_send()
    ep = WebhookEndpoint.objects.get()
    assert not ep.active and "410" in ep.disabled_reason
    assert len(receiver.received) == 1  # the second notification was not sent
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"failed"}
    # no new outbox rows while disabled
    _status_change(feed, ingest, "delivered", 20)
    assert WebhookDelivery.objects.count() == 2
    response = shop_a.client.post(reverse("api-webhook-endpoint-enable", args=[endpoint["id"]]))
    assert response.status_code == 200
    assert (response.json()["active"], response.json()["replayed"]) == (True, 2)
    relay.webhook_deliveries_send()
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}
    sequences = [r.json["sequence"] for r in receiver.received[1:]]
    assert sorted(sequences) == [1, 2]


def test_consecutive_failures_disable_the_endpoint(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    receiver.default = 500
    for _ in range(3):
        _due_now()
        relay.webhook_deliveries_send()
    ep = WebhookEndpoint.objects.get()
    assert not ep.active
    assert ep.disabled_reason == "3 consecutive failed deliveries"
    log = shop_a.client.get(reverse("api-webhook-endpoint-log", args=[ep.pk])).json()
    assert [a["status_code"] for a in log["results"]] == [500, 500, 500]


def test_redirects_are_not_followed(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    receiver.behaviour = ["redirect"]
    relay.webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.last_status_code) == ("pending", 302)
    assert len(receiver.received) == 1


def test_rotation_signs_with_both_secrets_during_the_overlap(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    endpoint = _endpoint(shop_a, receiver.url)
    rotated = shop_a.client.post(reverse("api-webhook-endpoint-rotate", args=[endpoint["id"]]))
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    _status_change(feed, ingest)
    relay.webhook_deliveries_send()
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split()) == 2
    for secret in (endpoint["secret"], new_secret):
        assert webhooks.signature_verify(secret=secret, headers=got.headers, body=got.body)
    WebhookEndpoint.objects.update(previous_secret_expires_at=timezone.now())
    ep = WebhookEndpoint.objects.get()
    header = webhooks.signature_header(endpoint=ep, message_id="msg_x", timestamp=1, body=b"{}")
    assert len(header.split()) == 1


# --- SSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://100.64.0.1/hook",
        "http://[2002:7f00:1::1]/hook",  # 6to4 carrying 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/hook",  # 6to4 carrying the cloud metadata address
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 carrying 127.0.0.1
        "http://[64:ff9b:1::a00:5]/hook",  # local-use NAT64 (the operator's network)
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ],
)
def test_private_loopback_link_local_and_metadata_targets_are_refused(
    url: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(UnsafeTarget):
        webhooks.target_resolve(url)


def test_a_public_address_is_allowed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    # DNS is the outside world here: answer like a public resolver would.
    def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    target = webhooks.target_resolve("https://hooks.example.com/x?y=1")
    assert (target.address, target.port, target.path) == ("93.184.215.14", 443, "/x?y=1")


def test_the_api_refuses_a_private_url_unless_the_setting_allows_it(
    shop_a: ShopClient, settings: Any, receiver: Receiver
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = shop_a.client.post(
        reverse("api-webhook-endpoints"), {"url": receiver.url}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsafe_url"


def test_the_relay_refuses_an_endpoint_that_now_resolves_privately(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver, settings: Any
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    relay.webhook_deliveries_send()
    assert receiver.received == []
    assert WebhookDelivery.objects.get().last_error.startswith("refused")


def test_endpoint_payload_is_valid_json_with_the_documented_fields(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, receiver: Receiver
) -> None:
    _register(shop_a)
    _endpoint(shop_a, receiver.url)
    _status_change(feed, ingest)
    relay.webhook_deliveries_send()
    body = json.loads(receiver.received[0].body)
    assert set(body) == {"id", "type", "sequence", "created_at", "data"}
    assert set(body["data"]) >= {"tracking_number", "status", "previous_status", "event"}


def test_a_6to4_or_nat64_form_of_a_public_address_is_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    # 2002:5db8:d70e::1 carries 93.184.215.14, 64:ff9b::5db8:d70e the same: public both ways.
    for url in ("http://[2002:5db8:d70e::1]/hook", "http://[64:ff9b::5db8:d70e]/hook"):
        assert webhooks.target_resolve(url).port == 80
