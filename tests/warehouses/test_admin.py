"""Operator admin: upload, changelists without N+1 queries, the timeline inline."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shipments.models import Shipment
from tests.conftest import FeedFactory, hub_csv
from warehouses.models import Feed, FeedRun

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]


@pytest.fixture
def operator(client: Client) -> Client:
    user = User.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


def test_an_operator_uploads_a_file_and_lands_on_its_run(
    operator: Client, feed: Feed, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    upload = SimpleUploadedFile(
        "export.csv", hub_csv("ADM001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,")
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # type: ignore[attr-defined]
        response = operator.post(
            reverse("admin:warehouses_feed_upload", args=[feed.pk]), {"file": upload}
        )
    run = FeedRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:warehouses_feedrun_change", args=[run.pk])
    assert (run.original_name, run.status) == ("export.csv", "queued")
    assert len(callbacks) == 1  # the ingest task is enqueued after commit


@pytest.mark.parametrize("n", [2, 20])
def test_the_changelists_cost_the_same_queries_whatever_the_number_of_rows(
    operator: Client, ingest: Ingest, n: int, django_assert_max_num_queries: Callable[..., object]
) -> None:
    for i in range(n):
        feed = FeedFactory()
        ingest(
            feed,
            hub_csv(
                f"ROW{i:04d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
                "bad,teleported,2026,,,,,,,,,",
            ),
        )
    for name in (
        "warehouses_feedrun",
        "warehouses_rejectedrecord",
        "warehouses_feed",
        "shipments_shipment",
        "warehouses_warehouse",
    ):
        with django_assert_max_num_queries(14):  # type: ignore[operator]
            response = operator.get(reverse(f"admin:{name}_changelist"))
        assert response.status_code == 200, name


def test_a_shipment_page_shows_its_timeline(operator: Client, feed: Feed, ingest: Ingest) -> None:
    ingest(
        feed,
        hub_csv(
            "TL001,warehouse_received,2026-05-01T09:00:00+08:00,,Heihe bonded,CNHEK,CN,,,,,",
            "TL001,departed,2026-05-02T09:00:00+08:00,,,CNSFH,CN,,,,rail,",
        ),
    )
    shipment = Shipment.objects.get()
    page = operator.get(reverse("admin:shipments_shipment_change", args=[shipment.pk]))
    text = page.content.decode()
    assert "warehouse_received" in text
    assert "CNSFH" in text
    search = operator.get(reverse("admin:shipments_shipment_changelist") + "?q=TL001")
    assert "TL001" in search.content.decode()


def test_shipment_search_reads_the_indexes_for_either_number(
    operator: Client, feed: Feed, ingest: Ingest
) -> None:
    ingest(
        feed,
        hub_csv(
            "SR0001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,ORD-77,,,",
            "SR0002,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,ord-78,,,",
        ),
    )
    changelist = reverse("admin:shipments_shipment_changelist")

    def found(term: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            response = operator.get(changelist, {"q": term})
        assert response.status_code == 200
        # upper() on the column would mean a scan of every shipment
        assert not [q["sql"] for q in queries.captured_queries if "UPPER(" in q["sql"]]
        return sorted(response.context["cl"].result_list.values_list("tracking_number", flat=True))

    assert found(" sr 0001 ") == ["SR0001"]
    assert found("ORD-77") == ["SR0001"]
    assert found("ord-78") == ["SR0002"]
    assert found("ORD-78") == []  # order numbers are matched as given
    assert found("SR0003") == []


def test_run_page_lists_its_rejects(operator: Client, feed: Feed, ingest: Ingest) -> None:
    run = ingest(
        feed,
        hub_csv("OK0001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,", "X1,nope,2026,,,,,,,,,"),
    )
    page = operator.get(reverse("admin:warehouses_feedrun_change", args=[run.pk])).content.decode()
    assert "line" in page
    assert "must be 3-64 letters" in page  # the reason, on the run page itself


def test_every_admin_changelist_and_add_page_renders_within_a_query_budget(
    operator: Client, ingest: Ingest, django_assert_max_num_queries: Callable[..., object]
) -> None:
    from django.contrib import admin

    for i in range(5):
        ingest(
            FeedFactory(),
            hub_csv(
                f"ALL{i:04d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
                f",loaded,2026-05-01T10:00:00+08:00,,,CNSFH,CN,,,,rail,UNIT{i}",
                "bad,teleported,2026,,,,,,,,,",
            ),
        )
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        with django_assert_max_num_queries(20):  # type: ignore[operator]
            response = operator.get(url)
        assert response.status_code == 200, url
        if model_admin.has_add_permission(response.wsgi_request):
            add = operator.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
            assert add.status_code == 200, opts.label


def test_a_shipment_page_costs_the_same_queries_whatever_its_history(
    operator: Client, feed: Feed, ingest: Ingest
) -> None:
    events = (
        "info_received,2026-05-01T09:00:00+08:00",
        "warehouse_received,2026-05-02T09:00:00+08:00",
        "out_for_delivery,2026-05-09T09:00:00+08:00",
        "delivered,2026-05-09T15:00:00+08:00",
    )
    # One file each: every event is a status change, from a run of its own.
    for event in events:
        ingest(feed, hub_csv(f"LONG01,{event},,,,CN,,,,,"))
    ingest(feed, hub_csv(f"SHORT1,{events[0]},,,,CN,,,,,"))
    long, short = (Shipment.objects.get(tracking_number=tn) for tn in ("LONG01", "SHORT1"))
    assert (long.status_changes.count(), short.status_changes.count()) == (4, 1)

    def page_queries(shipment: Shipment) -> int:
        with CaptureQueriesContext(connection) as queries:
            page = operator.get(reverse("admin:shipments_shipment_change", args=[shipment.pk]))
        assert page.status_code == 200
        return len(queries)

    # The events' runs and the status changes' events are read with their rows.
    assert page_queries(long) == page_queries(short)
