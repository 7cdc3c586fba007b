"""GET /api/v1/shipments/export: CSV (BOM, UTF-8) and XLSX, formula cells neutralised, the
list's filters, tenant isolation, a bounded number of queries, typed XLSX cells."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shipments import exports
from shipments.api.exports import HEADER
from shipments.models import Shipment, ShipmentEstimate, TrackingEvent
from tests.conftest import ShipmentFactory
from tests.shipments.conftest import ShopClient

pytestmark = pytest.mark.django_db

EXPORT = reverse("api-shipments-export")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AT = datetime(2026, 11, 5, 8, 30, 15, tzinfo=UTC)


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def csv_rows(response: Any) -> list[dict[str, str]]:
    data = body(response)
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_rows(response: Any) -> list[dict[str, Any]]:
    book = openpyxl.load_workbook(io.BytesIO(body(response)))
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    return [dict(zip(values[0], r, strict=True)) for r in values[1:]]


def _status_event(shipment: Shipment, **fields: Any) -> TrackingEvent:
    event = TrackingEvent.objects.create(
        shipment=shipment,
        code="arrived",
        occurred_at=AT,
        utc_offset_minutes=540,
        tz_source="explicit",
        dedupe_key=uuid.uuid4(),
        **fields,
    )
    shipment.status_event = event
    shipment.save(update_fields=["status_event"])
    return event


def test_csv_has_a_bom_and_chinese_and_russian_text_round_trips(shop_a: ShopClient) -> None:
    shipment = ShipmentFactory(
        shop=shop_a.shop,
        tracking_number="EXP0001CN",
        order_number="订单-42",
        carrier="Почта России",
        status="in_transit",
        stage="line_haul",
        destination_country="RU",
        status_changed_at=AT,
        weight_kg=Decimal("0.350"),
        declared_value=Decimal("12.50"),
        currency="CNY",
    )
    _status_event(
        shipment,
        location_name="Благовещенск",
        location_code="RUBQS",
        country="RU",
        description='到达 Arrived, "quoted"\nsecond line',
    )

    response = shop_a.client.get(EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="shipments-')
    assert response["Content-Disposition"].endswith('.csv"')
    [row] = csv_rows(response)
    assert list(row) == list(HEADER)
    assert row["tracking_number"] == "EXP0001CN"
    assert row["order_number"] == "订单-42"
    assert row["carrier"] == "Почта России"
    assert row["status_event_location"] == "Благовещенск"
    assert row["status_event_description"] == '到达 Arrived, "quoted"\nsecond line'
    assert row["status_event_at"] == "2026-11-05T08:30:15Z"
    assert row["status_changed_at"] == "2026-11-05T08:30:15Z"
    assert row["weight_kg"] == "0.350"
    assert row["declared_value"] == "12.50"
    assert row["delivered_at"] == ""


FORMULAS = [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+7 999 123", "'+7 999 123"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tTAB", "'\tTAB"),
    ("\rCR", "'\rCR"),
    ("＝1+1", "'＝1+1"),
    ("ORD=1", "ORD=1"),
]


def test_formula_cells_are_neutralised_in_csv(shop_a: ShopClient) -> None:
    for i, (text, _) in enumerate(FORMULAS):
        ShipmentFactory(shop=shop_a.shop, tracking_number=f"F{i:04d}", order_number=text)

    rows = csv_rows(shop_a.client.get(EXPORT, {"format": "csv"}))

    got = {r["tracking_number"]: r["order_number"] for r in rows}
    assert got == {f"F{i:04d}": expected for i, (_, expected) in enumerate(FORMULAS)}


def test_xlsx_keeps_text_as_text_with_typed_numbers_and_dates(shop_a: ShopClient) -> None:
    shipment = ShipmentFactory(
        shop=shop_a.shop,
        tracking_number="EXP0002CN",
        order_number='=HYPERLINK("http://x","y")',
        carrier="顺丰",
        status="delivered",
        stage="last_mile",
        status_changed_at=AT,
        weight_kg=Decimal("1.250"),
        created_at=datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
    )
    _status_event(shipment, location_name="Москва", country="RU")

    response = shop_a.client.get(EXPORT, {"format": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"] == XLSX_TYPE
    assert response["Content-Disposition"].endswith('.xlsx"')
    data = body(response)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    assert [c.value for c in sheet[1]] == list(HEADER)
    cells = {h: sheet.cell(row=2, column=i + 1) for i, h in enumerate(HEADER)}
    # A string cell holding the text exactly, never a formula; Excel's quote prefix marks it.
    assert cells["order_number"].data_type == "s"
    assert cells["order_number"].value == '=HYPERLINK("http://x","y")'
    assert cells["order_number"].quotePrefix
    assert not cells["carrier"].quotePrefix
    assert cells["carrier"].value == "顺丰"
    assert cells["status_event_location"].value == "Москва"
    # Times are dates (UTC wall-clock time), numbers are numbers.
    assert cells["delivered_at"].value == datetime(2026, 11, 5, 8, 30, 15)
    assert cells["delivered_at"].is_date
    assert cells["created_at"].value == datetime(2026, 11, 1, 0, 0)
    assert cells["weight_kg"].value == 1.25
    assert cells["weight_kg"].data_type == "n"
    assert cells["estimated_delivery_earliest"].value is None


def test_format_by_accept_header_and_unknown_formats(shop_a: ShopClient) -> None:
    ShipmentFactory(shop=shop_a.shop, tracking_number="ACC0001")

    by_accept = shop_a.client.get(EXPORT, HTTP_ACCEPT=XLSX_TYPE)
    assert by_accept.status_code == 200
    assert by_accept["Content-Type"] == XLSX_TYPE
    assert xlsx_rows(by_accept)[0]["tracking_number"] == "ACC0001"

    unknown = shop_a.client.get(EXPORT, {"format": "pdf"})
    assert unknown.status_code == 400
    assert unknown["Content-Type"] == "application/json"
    assert unknown.json()["error"]["code"] == "invalid"

    not_acceptable = shop_a.client.get(EXPORT, HTTP_ACCEPT="application/json")
    assert not_acceptable.status_code == 406
    assert not_acceptable.json()["error"]["code"] == "not_acceptable"


def test_the_lists_filters_apply(shop_a: ShopClient) -> None:
    ShipmentFactory(shop=shop_a.shop, tracking_number="RU1", destination_country="RU")
    ShipmentFactory(shop=shop_a.shop, tracking_number="RU2", destination_country="RU")
    ShipmentFactory(
        shop=shop_a.shop, tracking_number="RU3", destination_country="RU", status="delivered"
    )
    ShipmentFactory(shop=shop_a.shop, tracking_number="US1", destination_country="US")

    def numbers(**params: str) -> list[str]:
        return [r["tracking_number"] for r in csv_rows(shop_a.client.get(EXPORT, params))]

    assert numbers(destination_country="ru") == ["RU1", "RU2", "RU3"]
    assert numbers(destination_country="RU", status="delivered") == ["RU3"]
    assert numbers(status="pending") == ["RU1", "RU2", "US1"]
    bad = shop_a.client.get(EXPORT, {"status": "lost"})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["status"]


def test_a_shop_exports_only_its_own_shipments(shop_a: ShopClient, shop_b: ShopClient) -> None:
    ShipmentFactory(shop=shop_a.shop, tracking_number="MINE1")
    ShipmentFactory(shop=shop_b.shop, tracking_number="THEIRS1")
    ShipmentFactory(shop=None, tracking_number="NOBODY1")

    assert [r["tracking_number"] for r in csv_rows(shop_a.client.get(EXPORT))] == ["MINE1"]
    assert [
        r["tracking_number"] for r in xlsx_rows(shop_b.client.get(EXPORT + "?format=xlsx"))
    ] == ["THEIRS1"]


def test_an_unproven_claim_sees_nothing_dated_before_its_registration(
    shop_a: ShopClient,
) -> None:
    # As the JSON does (docs/claiming.md): its own order number, no earlier status event.
    shipment = ShipmentFactory(
        shop=shop_a.shop,
        tracking_number="CLAIM1",
        order_number="FEED-ORDER",
        claim_order_number="MY-ORDER",
        claim_limited_since=datetime(2026, 11, 6, tzinfo=UTC),
        status_changed_at=AT,
        last_event_at=AT,
    )
    _status_event(shipment, description="before the claim")

    # The same claim made before the event: the event is the shop's to see.
    earlier = ShipmentFactory(
        shop=shop_a.shop,
        tracking_number="CLAIM2",
        order_number="FEED-ORDER-2",
        claim_order_number="MY-ORDER-2",
        claim_limited_since=datetime(2026, 11, 1, tzinfo=UTC),
        status="delivered",
        status_changed_at=AT,
        last_event_at=AT,
    )
    _status_event(earlier, description="after the claim")

    rows = {r["tracking_number"]: r for r in csv_rows(shop_a.client.get(EXPORT))}

    hidden, seen = rows["CLAIM1"], rows["CLAIM2"]
    assert hidden["order_number"] == "MY-ORDER"
    assert hidden["status_event_description"] == ""
    assert hidden["status_event_at"] == ""
    assert hidden["status_changed_at"] == ""
    assert hidden["last_event_at"] == ""
    assert seen["order_number"] == "MY-ORDER-2"
    assert seen["status_event_description"] == "after the claim"
    assert seen["status_changed_at"] == "2026-11-05T08:30:15Z"
    assert seen["delivered_at"] == "2026-11-05T08:30:15Z"


def test_an_export_without_credentials_is_refused(shop_a: ShopClient) -> None:
    response = shop_a.client.__class__().get(EXPORT)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_queries_are_one_per_batch_whatever_the_size(
    shop_a: ShopClient, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(exports, "BATCH_SIZE", 3)

    def queries(n: int) -> int:
        Shipment.objects.filter(shop=shop_a.shop).delete()
        for i in range(n):
            s = ShipmentFactory(shop=shop_a.shop, tracking_number=f"Q{n}X{i:03d}")
            _status_event(s, location_name=f"place {i}")
        with CaptureQueriesContext(connection) as captured:
            response = shop_a.client.get(EXPORT, {"format": fmt})
            data = body(response)
        assert data
        return len(captured)

    # 2 rows: one batch (short); 6: two full ones and an empty one; 7: three.
    base = queries(2)
    assert queries(6) == base + 2
    assert queries(7) == base + 2


def test_rate_limited_by_its_own_stricter_scope(shop_a: ShopClient, settings: Any) -> None:
    settings.API_EXPORT_RATE_PER_KEY = "2/min"
    first = shop_a.client.get(EXPORT)
    assert first.status_code == 200
    assert first["X-RateLimit-Limit"] == "2"
    assert shop_a.client.get(EXPORT).status_code == 200
    refused = shop_a.client.get(EXPORT)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert "Retry-After" in refused
    # The rest of the API is not held back by the export's limit.
    assert shop_a.client.get(reverse("api-shipments")).status_code == 200


def test_the_estimate_is_the_jsons_complete_range_or_nothing(shop_a: ShopClient) -> None:
    ranged = ShipmentFactory(shop=shop_a.shop, tracking_number="EST1", stage="line_haul")
    half = ShipmentFactory(shop=shop_a.shop, tracking_number="EST2", stage="line_haul")
    ShipmentFactory(shop=shop_a.shop, tracking_number="EST3")
    ShipmentEstimate.objects.create(
        shipment=ranged,
        stage="line_haul",
        stage_entered_at=AT,
        earliest=datetime(2026, 11, 12, tzinfo=UTC),
        latest=datetime(2026, 11, 15, 12, tzinfo=UTC),
    )
    ShipmentEstimate.objects.create(
        shipment=half, stage="line_haul", stage_entered_at=AT, earliest=AT, latest=None
    )

    rows = {r["tracking_number"]: r for r in csv_rows(shop_a.client.get(EXPORT))}

    assert rows["EST1"]["estimated_delivery_earliest"] == "2026-11-12T00:00:00Z"
    assert rows["EST1"]["estimated_delivery_latest"] == "2026-11-15T12:00:00Z"
    for number in ("EST2", "EST3"):
        assert rows[number]["estimated_delivery_earliest"] == ""
        assert rows[number]["estimated_delivery_latest"] == ""
    # Exactly what the JSON says of each.
    for number in ("EST1", "EST2", "EST3"):
        detail = shop_a.client.get(reverse("api-shipment", args=[number])).json()
        estimate = detail["estimated_delivery"]
        assert rows[number]["estimated_delivery_earliest"] == (estimate or {}).get("earliest", "")


def test_past_a_sheets_last_row_the_xlsx_goes_on_in_a_new_sheet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 2)
    rows = [[f"N{i}", i] for i in range(5)]
    export = exports.Export(name="t", header=["name", "n"], batches=[rows[:3], rows[3:]])

    book = openpyxl.load_workbook(io.BytesIO(b"".join(exports.xlsx_chunks(export))))

    assert book.sheetnames == ["t", "t 2", "t 3"]
    sheets = [list(s.iter_rows(values_only=True)) for s in book.worksheets]
    assert sheets == [
        [("name", "n"), ("N0", 0), ("N1", 1)],
        [("name", "n"), ("N2", 2), ("N3", 3)],
        [("name", "n"), ("N4", 4)],
    ]


def test_an_empty_export_is_its_header() -> None:
    export = exports.Export(name="t", header=["a", "b"], batches=[])
    assert b"".join(exports.csv_chunks(export)) == b"\xef\xbb\xbfa,b\r\n"
    book = openpyxl.load_workbook(io.BytesIO(b"".join(exports.xlsx_chunks(export))))
    assert list(book.worksheets[0].iter_rows(values_only=True)) == [("a", "b")]
