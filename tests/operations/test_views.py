from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from operations import services
from operations.models import ExceptionAck, ExceptionItem
from tests.conftest import FeedFactory, hub_csv
from tests.operations.conftest import History, row
from warehouses.models import FeedRun

pytestmark = pytest.mark.django_db

URL = "/admin/operations/dashboard/"


def points(html: str) -> int:
    return len(re.findall(r'class="point', html))


def test_the_dashboard_is_inside_the_admin_for_staff_only(client: Client) -> None:
    assert reverse("operations:dashboard") == URL
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    User.objects.create_user("clerk", password="pw", is_staff=False)
    client.login(username="clerk", password="pw")
    assert client.get(URL).status_code == 302


def test_the_admin_index_links_to_the_dashboard(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:index"))
    assert URL in response.content.decode()


def test_the_dashboard_shows_every_section_with_chart_data(
    admin_client: Client, history: History
) -> None:
    services.dashboard_refresh()
    html = admin_client.get(URL).content.decode()

    for section in ("feed-health", "exceptions", "lanes"):
        assert f'id="{section}"' in html
    assert html.count("<svg") >= 6
    assert points(html) > 30
    assert "STUCK0001" in html
    assert reverse("admin:shipments_shipment_change", args=[history.stale.pk]) in html
    assert "CN → RU" in html
    assert "state-ok" in html


def test_the_dashboard_before_any_refresh_says_so(admin_client: Client) -> None:
    FeedFactory()
    html = admin_client.get(URL).content.decode()
    assert "have not been computed yet" in html
    assert "no data yet" in html


def test_the_dashboard_query_count_does_not_grow_with_the_data(
    admin_client: Client,
    history: History,
    ingest: Callable[..., FeedRun],
    django_assert_num_queries: Callable[..., object],
) -> None:
    services.dashboard_refresh()
    admin_client.get(URL)  # warm the session
    # session + user + ten dashboard reads (operations.selectors.dashboard_get)
    with django_assert_num_queries(12):  # type: ignore[attr-defined]
        admin_client.get(URL)
    # ten times the feeds, more exceptions, lanes and days
    for n in range(10):
        feed = FeedFactory()
        when = timezone.now() - timedelta(days=n, hours=3)
        ingest(
            feed,
            hub_csv(
                row(f"MORE{n:04d}", "warehouse_received", when, "CN", mode="air"),
                row(f"MORE{n:04d}", "customs_held", when + timedelta(hours=1), "US", mode="air"),
            ),
        )
    services.dashboard_refresh()
    with django_assert_num_queries(12):  # type: ignore[attr-defined]
        response = admin_client.get(URL)
    assert response.content.decode().count("exception-row") > 10


def test_bulk_acknowledge_from_the_dashboard_hides_the_rows(
    admin_client: Client, history: History
) -> None:
    services.dashboard_refresh()
    ids = list(ExceptionItem.objects.values_list("pk", flat=True))
    response = admin_client.post(
        reverse("admin:operations_exceptionitem_changelist"),
        {"action": "acknowledge", "_selected_action": ids, "index": "0", "note": "seen"},
    )
    assert response.status_code == 302
    assert ExceptionAck.objects.filter(acknowledged=True, note="seen").count() == len(ids)
    html = admin_client.get(URL).content.decode()
    assert "Nothing needs attention." in html


def test_a_note_without_text_asks_for_it_then_is_kept(
    admin_client: Client, history: History
) -> None:
    services.dashboard_refresh()
    item = ExceptionItem.objects.get(kind="stale")
    changelist = reverse("admin:operations_exceptionitem_changelist")
    response = admin_client.post(
        changelist, {"action": "add_note", "_selected_action": [item.pk], "index": "0"}
    )
    assert response.status_code == 200
    assert "Add a note" in response.content.decode()
    admin_client.post(
        changelist,
        {"action": "add_note", "_selected_action": [item.pk], "note": "train delayed at border"},
    )
    item.refresh_from_db()
    assert item.note == "train delayed at border"
    assert item.acknowledged_at is None


def test_refresh_now_queues_the_refresh(admin_client: Client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    queued = []
    monkeypatch.setattr(
        "operations.views.refresh_dashboard.delay", lambda **kwargs: queued.append(kwargs)
    )
    response = admin_client.post(reverse("operations:refresh"))
    assert response.status_code == 302
    # The operator asked: the statistics too, however recently they were built.
    assert queued == [{"everything": True}]
