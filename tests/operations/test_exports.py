"""The dashboard's lane table, warehouse table and exceptions queue as CSV and XLSX: staff
only, the same writer as the shops' export (BOM, neutralised formulas, typed XLSX cells)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from operations import services
from operations.models import ExceptionItem
from shipments import exports
from tests.conftest import FeedFactory, hub_csv
from tests.operations.conftest import History, row
from warehouses.models import FeedRun

pytestmark = pytest.mark.django_db


def url(table: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("operations:export", args=[table]) + (f"?{query}" if query else "")


def csv_rows(response: Any) -> list[dict[str, str]]:
    data = b"".join(response.streaming_content)
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_rows(response: Any) -> list[dict[str, Any]]:
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    values = list(book.worksheets[0].iter_rows(values_only=True))
    return [dict(zip(values[0], r, strict=True)) for r in values[1:]]


def test_exports_are_for_staff_only(client: Client) -> None:
    for table in ("lanes", "warehouses", "exceptions"):
        response = client.get(url(table))
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    User.objects.create_user("clerk", password="pw", is_staff=False)
    client.login(username="clerk", password="pw")
    for table in ("lanes", "warehouses", "exceptions"):
        assert client.get(url(table)).status_code == 302


def test_the_dashboard_links_to_each_export(admin_client: Client) -> None:
    html = admin_client.get(reverse("operations:dashboard")).content.decode()
    for table in ("lanes", "warehouses", "exceptions"):
        for fmt in ("csv", "xlsx"):
            assert f'href="{url(table)}?format={fmt}"' in html


def test_lane_table(admin_client: Client, history: History) -> None:
    services.dashboard_refresh()

    response = admin_client.get(url("lanes"))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="lanes-')
    lanes = {
        (r["origin_country"], r["destination_country"], r["transport_mode"]): r
        for r in csv_rows(response)
    }
    # conftest: 12 delivered CN -> RU by rail in 80 h, every third (4 of them) in 110 h.
    lane = lanes["CN", "RU", "rail"]
    assert lane["delivered"] == "12"
    assert lane["transit_p50_hours"] == "80.0"
    assert lane["transit_p90_hours"] == "110.0"
    # received -> dispatched 10 h, dispatched -> export cleared 10 h: the first mile is 20 h.
    assert lane["first_mile_p50_hours"] == "20.0"

    [typed] = [
        r
        for r in xlsx_rows(admin_client.get(url("lanes", format="xlsx")))
        if r["destination_country"] == "RU" and r["transport_mode"] == "rail"
    ]
    assert typed["delivered"] == 12
    assert typed["transit_p90_hours"] == 110.0


def test_warehouse_table(admin_client: Client, history: History) -> None:
    services.dashboard_refresh()

    rows = {r["warehouse"]: r for r in csv_rows(admin_client.get(url("warehouses")))}

    heihe = rows["heihe"]
    # Every parcel's received -> dispatched took 10 h.
    assert heihe["dwell_p50_hours"] == "10.0"
    assert heihe["dwell_p90_hours"] == "10.0"
    # Status of each parcel by the warehouse of its latest event (all events are heihe's).
    assert heihe["shipments_delivered"] == "12"
    assert heihe["shipments_in_transit"] == "1"  # STUCK0001
    assert heihe["shipments_exception"] == "1"  # HELD00001
    assert heihe["shipments_failed_attempt"] == "1"  # FAIL00001
    assert heihe["shipments_pending"] == "0"


def test_exceptions_queue_whole_and_by_kind_with_formulas_neutralised(
    admin_client: Client, history: History
) -> None:
    services.dashboard_refresh()
    ExceptionItem.objects.filter(shipment=history.held).update(note='=cmd|" /C calc"!A0')

    rows = csv_rows(admin_client.get(url("exceptions")))

    by_number = {r["tracking_number"]: r for r in rows}
    assert set(by_number) == {"STUCK0001", "HELD00001", "FAIL00001"}
    assert by_number["HELD00001"]["kind"] == "customs"
    assert by_number["HELD00001"]["note"] == '\'=cmd|" /C calc"!A0'
    assert by_number["FAIL00001"]["kind"] == "failed_attempt"
    assert by_number["STUCK0001"]["kind"] == "stale"
    assert by_number["HELD00001"]["since"].endswith("Z")

    held = xlsx_rows(admin_client.get(url("exceptions", format="xlsx", kind="customs")))
    assert [r["tracking_number"] for r in held] == ["HELD00001"]
    assert held[0]["note"] == '=cmd|" /C calc"!A0'  # a string cell, kept exactly

    assert admin_client.get(url("exceptions", kind="lost")).status_code == 400
    assert admin_client.get(url("exceptions", format="pdf")).status_code == 400
    assert admin_client.get(url("everything")).status_code == 404


def test_the_exceptions_export_reads_one_batch_per_query(
    admin_client: Client,
    history: History,
    ingest: Callable[..., FeedRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "BATCH_SIZE", 2)
    services.dashboard_refresh()
    admin_client.get(url("lanes"))  # warm the session

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            rows = csv_rows(admin_client.get(url("exceptions")))
        return len(rows), len(captured)

    n, base = queries()
    assert n == 3  # batches of 2: 2 + 1
    feed = FeedFactory()
    when = timezone.now() - timedelta(hours=3)
    ingest(
        feed,
        hub_csv(*[row(f"MORE{i:04d}", "customs_held", when, "US") for i in range(4)]),
    )
    services.dashboard_refresh()
    n, more = queries()
    assert n == 7  # 2 + 2 + 2 + 1: two more batches
    assert more == base + 2
