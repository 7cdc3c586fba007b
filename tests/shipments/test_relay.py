"""The relay's isolation: one bad endpoint costs only itself (issue 12). Real local receivers;
the relay pass is called as the worker calls it, and once through a real Celery worker."""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from config.celery_app import app
from shipments import relay, webhooks
from shipments.models import (
    Shop,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from tests.conftest import ShipmentFactory, ShopFactory
from tests.shipments.conftest import Received, Receiver

STATUS = WebhookEventType.STATUS_CHANGED.value


def _endpoint(shop: Shop, url: str) -> WebhookEndpoint:
    return webhooks.webhook_endpoint_create(shop=shop, url=url, event_types=[STATUS])


def _outbox(endpoint: WebhookEndpoint, count: int, shipments: int = 1) -> list[WebhookDelivery]:
    """`count` notifications spread over `shipments` parcels, due now."""
    parcels = [ShipmentFactory(shop=endpoint.shop) for _ in range(shipments)]
    return WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            message_id=uuid.uuid4(),
            endpoint=endpoint,
            shipment=parcels[i % shipments],
            event_type=STATUS,
            sequence=i // shipments + 1,
            data={"n": i},
        )
        for i in range(count)
    )


@contextmanager
def _restored(root: logging.Logger, level: int, handlers: list[logging.Handler]) -> Iterator[None]:
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


@pytest.fixture
def shop(db: None) -> Shop:
    return ShopFactory()


@pytest.mark.django_db
def test_a_hanging_endpoint_costs_one_timeout_and_the_healthy_one_gets_everything(
    shop: Shop, receivers: Callable[..., Receiver], settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 3
    hanging = receivers(default="hang", hang_seconds=10)
    healthy = receivers()
    stuck = _endpoint(shop, hanging.url)
    fine = _endpoint(shop, healthy.url)
    _outbox(stuck, 20, shipments=4)
    _outbox(fine, 40, shipments=8)

    started = time.time()
    assert relay.webhook_deliveries_send() == 40 + settings.WEBHOOK_ENDPOINT_CONCURRENCY
    took = time.time() - started

    # Every lane of the hanging endpoint stopped at its first timeout (3 s here).
    assert len(hanging.received) == settings.WEBHOOK_ENDPOINT_CONCURRENCY
    assert 3.0 <= took < 5.0
    assert len(healthy.received) == 40
    # ...while the healthy endpoint's requests went out beside them, not after them.
    assert max(r.at for r in healthy.received) - started < 2.5
    assert WebhookDelivery.objects.filter(endpoint=fine, state="delivered").count() == 40
    timed_out = WebhookDelivery.objects.filter(endpoint=stuck, attempts=1)
    assert timed_out.count() == settings.WEBHOOK_ENDPOINT_CONCURRENCY
    assert all(d.last_error.startswith("timeout") for d in timed_out)
    # The others were not tried: still due now, no attempt counted.
    untouched = WebhookDelivery.objects.filter(endpoint=stuck, attempts=0)
    assert untouched.count() == 20 - settings.WEBHOOK_ENDPOINT_CONCURRENCY
    assert all(d.next_attempt_at <= timezone.now() for d in untouched)
    stuck.refresh_from_db()
    assert stuck.consecutive_failures == settings.WEBHOOK_ENDPOINT_CONCURRENCY


@pytest.mark.django_db
def test_a_receiver_that_trickles_its_answer_is_cut_at_the_request_deadline(
    settings: Any,
) -> None:
    # A socket timeout bounds each read; a byte every half second would never hit it.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"X-Slow: y\r\n")
            except OSError:
                return
            time.sleep(0.3)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.5
    started = time.monotonic()
    result = webhooks._post(f"http://127.0.0.1:{listener.getsockname()[1]}/", {}, b"{}")
    stop.set()
    listener.close()
    assert result.status_code is None and result.error.startswith("timeout")
    assert 1.4 <= time.monotonic() - started < 2.5


@pytest.mark.django_db
def test_the_breaker_opens_after_consecutive_failures_and_a_probe_closes_it(
    shop: Shop, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_BREAKER_FAILURES = 3
    settings.WEBHOOK_BREAKER_OPEN_SECONDS = 60
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    endpoint = _endpoint(shop, receiver.url)
    _outbox(endpoint, 10)
    receiver.default = 503

    def make_due() -> None:
        WebhookDelivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())

    for _ in range(3):
        make_due()
        assert relay.webhook_deliveries_send() == 1
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 3 and endpoint.breaker_trips == 1
    assert endpoint.breaker_open_until is not None
    opened_for = endpoint.breaker_open_until - timezone.now()
    assert timedelta(seconds=55) < opened_for <= timedelta(seconds=60)

    # Another lane's request, sent before it opened, failing now: not a failed probe.
    late = WebhookDelivery.objects.filter(state="pending").first()
    assert late is not None
    relay._record(late, webhooks.SendResult(None, 1000, "timeout: late"))
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.breaker_trips) == (4, 1)
    assert endpoint.breaker_open_until - timezone.now() <= timedelta(seconds=60)

    # Open: nothing is sent, and the deliveries stay pending and due.
    make_due()
    assert relay.webhook_deliveries_send() == 0
    assert len(receiver.received) == 3
    assert WebhookDelivery.objects.filter(state="pending").count() == 10

    # Half-open: one probe. A failed probe opens it again for twice as long.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(breaker_open_until=timezone.now())
    assert relay.webhook_deliveries_send() == 1
    endpoint.refresh_from_db()
    assert endpoint.breaker_trips == 2
    assert endpoint.breaker_open_until - timezone.now() > timedelta(seconds=115)

    # A probe that succeeds closes it; the next pass sends the rest.
    receiver.default = 200
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(breaker_open_until=timezone.now())
    make_due()
    assert relay.webhook_deliveries_send() == 1
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.breaker_trips) == (0, 0)
    assert endpoint.breaker_open_until is None
    assert relay.webhook_deliveries_send() == 9
    assert WebhookDelivery.objects.filter(state="delivered").count() == 10
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == 10  # repeats only under the same message id


@pytest.mark.django_db(transaction=True)
def test_a_pass_longer_than_its_lease_renews_it_and_no_other_relay_sends_meanwhile(
    receivers: Callable[..., Receiver], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lease of 1 s + 2 s here; the pass sends for about 4.5 s.
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    settings.WEBHOOK_RELAY_POLL_SECONDS = 0.2
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    monkeypatch.setattr(relay, "_LEASE_MARGIN_SECONDS", 2.0)
    assert relay.lease_seconds() == 3.0
    shop = ShopFactory()
    slow = receivers(default="hang", hang_seconds=0.3)
    _outbox(_endpoint(shop, slow.url), 15)
    sent: list[int] = []

    def first_relay() -> None:
        try:
            sent.append(relay.webhook_deliveries_send())
        finally:
            connection.close()

    first = threading.Thread(target=first_relay)
    first.start()
    while not slow.received:
        time.sleep(0.01)
    others = []
    while first.is_alive():
        others.append(relay.webhook_deliveries_send())
        time.sleep(0.3)
    first.join()
    assert sent == [15]
    assert len(others) >= 10 and set(others) == {0}
    ids = [r.headers["webhook-id"] for r in slow.received]
    assert len(ids) == len(set(ids)) == 15


@pytest.mark.django_db(transaction=True)
def test_a_second_relay_never_sends_to_an_endpoint_the_first_is_still_sending_to(
    receivers: Callable[..., Receiver], settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    shop = ShopFactory()
    slow = receivers(default="hang", hang_seconds=0.4)
    endpoint = _endpoint(shop, slow.url)
    _outbox(endpoint, 6)

    def first_relay() -> None:
        try:
            relay.webhook_deliveries_send()
        finally:
            connection.close()

    first = threading.Thread(target=first_relay)
    first.start()
    try:
        while not slow.received:
            time.sleep(0.01)
        # The old relay's 60 s claim ran out mid-pass; this endpoint is held for longer than
        # any request may take, and renewed while the pass sends.
        leased = WebhookEndpoint.objects.get().relay_leased_until
        assert leased is not None
        assert leased - timezone.now() > timedelta(seconds=5)
        assert relay.webhook_deliveries_send() == 0
    finally:
        first.join()
    ids = [r.headers["webhook-id"] for r in slow.received]
    assert len(ids) == len(set(ids)) == 6
    # Let go at the end of the pass: the next one may take it at once.
    released = WebhookEndpoint.objects.get().relay_leased_until
    assert released is not None and released <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_mid_pass_ends_its_sending_without_an_error(
    receivers: Callable[..., Receiver], settings: Any
) -> None:
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    shop = ShopFactory()
    doomed_receiver = receivers()
    other_receiver = receivers()
    doomed = _endpoint(shop, doomed_receiver.url)
    other = _endpoint(shop, other_receiver.url)
    _outbox(doomed, 5)
    _outbox(other, 3)

    def delete_endpoint(_: Received) -> None:
        # The shop deletes the endpoint while its first notification is on the wire.
        if len(doomed_receiver.received) == 1:
            WebhookEndpoint.objects.filter(pk=doomed.pk).delete()
            connection.close()

    doomed_receiver.on_request = delete_endpoint
    relay.webhook_deliveries_send()
    assert len(doomed_receiver.received) == 1  # nothing after the one under way
    assert not WebhookEndpoint.objects.filter(pk=doomed.pk).exists()
    assert not WebhookDelivery.objects.filter(endpoint_id=doomed.pk).exists()
    assert not WebhookAttempt.objects.filter(endpoint_id=doomed.pk).exists()
    assert WebhookDelivery.objects.filter(endpoint=other, state="delivered").count() == 3


@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_while_its_attempt_is_being_recorded_succeeds(
    receiver: Receiver,
) -> None:
    # The other order: the relay records first (its row lock makes the delete wait), then
    # the delete removes the new attempt row with the rest, in the database.
    shop = ShopFactory()
    endpoint = _endpoint(shop, receiver.url)
    (delivery,) = _outbox(endpoint, 1)
    deleted = threading.Event()

    def delete() -> None:
        try:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
            deleted.set()
        finally:
            connection.close()

    with transaction.atomic():
        # What _record does first: lock the delivery; Django's delete collects meanwhile.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1)
        deleter = threading.Thread(target=delete)
        deleter.start()
        with connection.cursor() as cursor:
            waiting = time.monotonic() + 10
            while time.monotonic() < waiting:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the delete never waited for the relay's lock")
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk, endpoint_id=endpoint.pk, status_code=200
        )
    deleter.join()
    assert deleted.is_set()
    assert not WebhookAttempt.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_tasks_are_routed_to_queues_by_kind(settings: Any) -> None:
    def queue_of(task: str) -> str:
        return str(app.amqp.router.route({}, task)["queue"].name)

    assert queue_of("warehouses.tasks.ingest_run") == "hub-test-ingest"
    assert queue_of("warehouses.tasks.fetch_feed") == "hub-test-ingest"
    assert queue_of("shipments.tasks.relay_webhooks") == "hub-test-webhooks"
    assert queue_of("operations.tasks.refresh_dashboard") == "hub-test-maintenance"
    assert queue_of("shipments.tasks.refresh_delivery_estimates") == "hub-test-maintenance"
    assert queue_of("warehouses.tasks.requeue_stuck_runs") == "hub-test-maintenance"
    # A worker without -Q consumes every kind, and none of a dev worker's queues.
    assert {q.name for q in app.amqp.queues.values()} == {
        "hub-test-ingest",
        "hub-test-webhooks",
        "hub-test-maintenance",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_with_a_hanging_neighbour_a_real_worker_delivers_the_healthy_endpoint_promptly(
    receivers: Callable[..., Receiver], settings: Any
) -> None:
    """Beat's schedule, sped up: a relay every 0.5 s; new notifications every 0.2 s for both
    endpoints for 6 s; one endpoint never answers (2 s timeout). Delay = arrival - created."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.WEBHOOK_RELAY_PASS_SECONDS = 3
    shop = ShopFactory()
    hanging = receivers(default="hang", hang_seconds=30)
    healthy = receivers()
    stuck = _endpoint(shop, hanging.url)
    fine = _endpoint(shop, healthy.url)
    created: dict[str, float] = {}
    # Starting a worker sets up Celery's logging: the root logger at the worker's level (error)
    # would hide later tests' warnings from caplog.
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    with (
        _restored(root, level, handlers),
        start_worker(app, perform_ping_check=False, pool="solo", concurrency=1),
    ):
        started = time.monotonic()
        next_relay = started
        while time.monotonic() - started < 6:
            for endpoint in (stuck, fine):
                (row,) = _outbox(endpoint, 1)
                if endpoint is fine:
                    created[row.webhook_id] = time.time()
            if time.monotonic() >= next_relay:
                app.send_task("shipments.tasks.relay_webhooks")
                next_relay += 0.5
            time.sleep(0.2)
        deadline = time.monotonic() + 15
        while len(healthy.received) < len(created) and time.monotonic() < deadline:
            app.send_task("shipments.tasks.relay_webhooks")
            time.sleep(0.5)
    arrived = {r.headers["webhook-id"]: r.at for r in healthy.received}
    assert set(arrived) == set(created)
    assert len(healthy.received) == len(created)  # none twice
    delays = sorted(arrived[m] - created[m] for m in created)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    # One slot, a relay every 0.5 s: a pass holding the hanging endpoint lasts one timeout.
    assert p99 < 2 + 0.5 + 1.5, f"p50 {statistics.median(delays):.2f} s, p99 {p99:.2f} s"
    assert WebhookEndpoint.objects.get(pk=stuck.pk).consecutive_failures >= 1


@pytest.mark.django_db
def test_an_open_breaker_shows_in_the_admin_and_retry_now_lets_the_next_pass_probe(
    shop: Shop, receiver: Receiver, admin_client: Any
) -> None:
    endpoint = _endpoint(shop, receiver.url)
    _outbox(endpoint, 2)
    until = timezone.now() + timedelta(minutes=5)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=7, breaker_open_until=until, breaker_trips=2
    )
    page = admin_client.get(reverse("admin:shipments_webhookendpoint_changelist"))
    assert f"open until {until:%Y-%m-%d %H:%M:%S} UTC (7 failures in a row)" in page.text
    assert relay.webhook_deliveries_send() == 0

    response = admin_client.post(
        reverse("admin:shipments_webhookendpoint_changelist"),
        {"action": "retry_now", "_selected_action": [endpoint.pk]},
    )
    assert response.status_code == 302
    page = admin_client.get(reverse("admin:shipments_webhookendpoint_changelist"))
    assert "half-open (next pass sends one probe)" in page.text
    assert relay.webhook_deliveries_send() == 1  # the probe
    assert relay.webhook_deliveries_send() == 1  # closed again: the rest
    page = admin_client.get(reverse("admin:shipments_webhookendpoint_changelist"))
    assert '<td class="field-breaker">closed</td>' in page.text


@pytest.mark.django_db(transaction=True)
def test_a_pass_kept_long_by_a_slow_endpoint_serves_what_becomes_due_meanwhile(
    receivers: Callable[..., Receiver], settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    settings.WEBHOOK_RELAY_POLL_SECONDS = 0.2
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    shop = ShopFactory()
    slow = receivers(default="hang", hang_seconds=0.5)  # answers 200, after half a second
    healthy = receivers()
    _outbox(_endpoint(shop, slow.url), 6)
    fine = _endpoint(shop, healthy.url)
    created: list[float] = []

    def add_later() -> None:
        # Due while the pass is busy with the slow endpoint (its 6 requests take 3 s).
        try:
            time.sleep(1.0)
            created.extend(d.created_at.timestamp() for d in _outbox(fine, 3))
        finally:
            connection.close()

    adder = threading.Thread(target=add_later)
    adder.start()
    sent = relay.webhook_deliveries_send()
    adder.join()
    assert sent == 6 + 3
    assert len(healthy.received) == 3
    # Sent by the same pass within a poll or two, long before the slow endpoint was done.
    assert max(r.at for r in healthy.received) - max(created) < 1.0
    assert max(r.at for r in healthy.received) < max(r.at for r in slow.received)


@pytest.mark.django_db(transaction=True)
def test_a_pass_whose_database_goes_away_fails_at_once_instead_of_waiting_on_its_lanes(
    receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    shop = ShopFactory()
    _outbox(_endpoint(shop, receiver.url), 20)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    def kill_the_relays_connection(_: Received) -> None:
        if len(receiver.received) == 1:
            with connection.cursor() as cursor:  # this server thread's own connection
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            connection.close()

    receiver.on_request = kill_the_relays_connection
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseError):
            relay.webhook_deliveries_send()
    finally:
        connection.close()
    assert time.monotonic() - started < 5
    assert len(receiver.received) <= 2
