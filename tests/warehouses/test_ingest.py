"""The ingestion pipeline end to end (parse -> normalize -> record), against PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipments.models import Shipment, StatusChange, TrackingEvent
from tests.conftest import HUB_HEADER, FeedFactory, WarehouseFactory, hub_csv
from warehouses.models import Feed, FeedRun, RejectedRecord

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]


def test_a_clean_hub_csv_creates_events_shipments_and_statuses(feed: Feed, ingest: Ingest) -> None:
    run = ingest(
        feed,
        hub_csv(
            "HB001,warehouse_received,2026-05-01 09:00:00,,Heihe bonded,CNHEK,CN,入库,ORD-1,,,",
            "HB001,departed,2026-05-02T10:00:00+08:00,,,CNHEK,CN,,,,rail,",
            "HB002,info_received,2026-05-01 08:00:00,Europe/Moscow,,,RU,,,,,",
        ),
    )
    assert run.status == FeedRun.Status.SUCCEEDED
    assert (run.records, run.events_created, run.duplicates, run.rejected) == (3, 3, 0, 0)
    assert run.shipments_touched == 2
    first = Shipment.objects.get(tracking_number="HB001")
    assert (first.status, first.stage, first.order_number) == ("in_transit", "line_haul", "ORD-1")
    assert first.status_event is not None and first.status_event.code == "departed"
    received = TrackingEvent.objects.get(shipment=first, code="warehouse_received")
    # 09:00 in Heihe (UTC+8), known from the place's UN/LOCODE
    assert received.occurred_at.isoformat() == "2026-05-01T01:00:00+00:00"
    assert (received.utc_offset_minutes, received.tz_source) == (480, "locode")
    moscow = TrackingEvent.objects.get(shipment__tracking_number="HB002")
    assert (moscow.utc_offset_minutes, moscow.tz_source) == (180, "separate_field")
    assert StatusChange.objects.filter(shipment=first).count() == 1


def test_reingesting_the_same_file_is_a_duplicate_run_that_creates_nothing(
    feed: Feed, ingest: Ingest
) -> None:
    payload = hub_csv("HB001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,")
    first = ingest(feed, payload)
    again = ingest(feed, payload)
    assert again.status == FeedRun.Status.DUPLICATE
    assert again.duplicate_of_id == first.pk
    assert "nothing to do" in again.error
    assert TrackingEvent.objects.count() == 1


def test_reprocessing_a_payload_dedupes_every_event(feed: Feed, ingest: Ingest) -> None:
    payload = hub_csv(
        "HB001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
        "HB002,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
    )
    ingest(feed, payload)
    replay = ingest(feed, payload, reprocess=True)
    assert replay.status == FeedRun.Status.SUCCEEDED
    assert (replay.events_created, replay.duplicates) == (0, 2)
    assert TrackingEvent.objects.count() == 2


def test_a_time_without_any_zone_is_rejected_not_taken_as_utc(ingest: Ingest) -> None:
    warehouse = WarehouseFactory(code="nozone", timezone="", unlocode="", city="Somewhere")
    feed = FeedFactory(warehouse=warehouse)
    run = ingest(
        feed,
        hub_csv(
            # No place at all (a named country would give China's zone).
            "HB001,picked_up,2026-05-01 09:00:00,,,,,,,,,",
            "HB002,picked_up,2026-05-01T09:00:00Z,,,,CN,,,,,",
        ),
    )
    assert run.status == FeedRun.Status.PARTIAL
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.line, reject.field) == (2, "event_time")
    assert "no time zone" in reject.reason
    assert Shipment.objects.filter(tracking_number="HB002").exists()


def test_the_feed_default_zone_applies_when_nothing_closer_is_known(ingest: Ingest) -> None:
    warehouse = WarehouseFactory(code="nozone2", timezone="", unlocode="", city="")
    feed = FeedFactory(warehouse=warehouse, default_timezone="Asia/Vladivostok")
    ingest(feed, hub_csv("HB001,picked_up,2026-05-01 09:00:00,,,,RU,,,,,"))
    event = TrackingEvent.objects.get()
    assert (event.tz_source, event.utc_offset_minutes) == ("feed_default", 600)


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("HB9,picked_up,2026-13-45 25:00,,,,CN,,,,,", "event_time", "unparseable time"),
        ("HB9,teleported,2026-05-01 09:00,,,,CN,,,,,", "event_code", "'teleported'"),
        (",picked_up,2026-05-01 09:00,,,,CN,,,,,", "tracking_number", "missing tracking number"),
        ("HB9,picked_up,2026-05-01 09:00,Mars/Olympus,,,CN,,,,,", "time_zone", "Mars/Olympus"),
        ("HB9,picked_up,2026-05-01 09:00,,,,China,,,,,", "country", "ISO 3166"),
        ("HB9,picked_up,2026-05-01 09:00", "", "expected 12 columns"),
    ],
)
def test_each_bad_row_is_rejected_with_its_line_field_and_reason_and_good_rows_are_kept(
    feed: Feed, ingest: Ingest, row: str, field: str, reason: str
) -> None:
    run = ingest(
        feed,
        hub_csv(
            "GOOD1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
            row,
            "GOOD2,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
        ),
    )
    assert run.status == FeedRun.Status.PARTIAL
    reject = RejectedRecord.objects.get(run=run)
    assert reject.line == 3
    assert reject.field == field
    assert reason in reject.reason
    assert reject.raw.startswith(row.split(",")[0])
    assert set(Shipment.objects.values_list("tracking_number", flat=True)) == {"GOOD1", "GOOD2"}


def test_unknown_partner_codes_can_become_exceptions_when_the_feed_says_so(
    ingest: Ingest,
) -> None:
    feed = FeedFactory(unknown_code_policy=Feed.UnknownCodePolicy.EXCEPTION)
    run = ingest(feed, hub_csv("HB1,XYZ,2026-05-01T09:00:00+08:00,,,,CN,,,,,"))
    assert run.status == FeedRun.Status.SUCCEEDED
    event = TrackingEvent.objects.get()
    assert event.code == "exception"
    assert "XYZ" in event.description


def test_partner_csv_in_gb18030_with_mapped_columns_and_codes(ingest: Ingest) -> None:
    feed = FeedFactory(
        format=Feed.Format.PARTNER_CSV,
        encoding=Feed.Encoding.GB18030,
        column_mapping={
            "tracking_number": "运单号",
            "event_code": "状态",
            "event_time": "时间",
            "location_name": "地点",
            "_delimiter": ";",
        },
        code_mapping={"已入库": "warehouse_received", "已出库": "warehouse_dispatched"},
        # The rows name the bonded warehouse only in Chinese, which no gazetteer places: the
        # feed is declared single-place by its default zone.
        default_timezone="Asia/Shanghai",
    )
    text = "运单号;状态;时间;地点\nHB100;已入库;2026-05-01 09:00;黑河保税仓\nHB100;已出库;2026-05-01 18:30;黑河保税仓\n"
    run = ingest(feed, text.encode("gb18030"))
    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    shipment = Shipment.objects.get(tracking_number="HB100")
    assert shipment.status == "in_transit"
    assert shipment.status_event is not None
    assert shipment.status_event.code == "warehouse_dispatched"
    assert shipment.status_event.location_name == "黑河保税仓"


def test_a_gbk_file_on_a_utf8_feed_rejects_the_undecodable_lines_only(ingest: Ingest) -> None:
    # The feed says utf-8 explicitly: new feeds default to `auto`, which would read this file
    # as GB18030 (see tests/warehouses/intake/).
    feed = FeedFactory(encoding=Feed.Encoding.UTF8)
    payload = hub_csv("GOOD1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,") + (
        "BAD1,picked_up,2026-05-01T09:00:00+08:00,,黑河,,CN,,,,,\n".encode("gbk")
    )
    run = ingest(feed, payload)
    assert run.status == FeedRun.Status.PARTIAL
    assert (run.encoding, run.encoding_detected) == ("utf-8", False)
    reject = RejectedRecord.objects.get(run=run)
    assert reject.line == 3
    # "BAD1,picked_up,2026-05-01T09:00:00+08:00,," is 42 bytes: 黑 starts at offset 42.
    assert "bytes at offset 42 are not valid utf-8" in reject.reason
    assert "GB18030" in reject.reason
    assert Shipment.objects.filter(tracking_number="GOOD1").exists()


def test_a_utf8_bom_is_tolerated(feed: Feed, ingest: Ingest) -> None:
    run = ingest(
        feed, b"\xef\xbb\xbf" + hub_csv("HB1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,")
    )
    assert run.status == FeedRun.Status.SUCCEEDED
    assert run.events_created == 1


def test_an_empty_file_fails_with_a_stored_reason(feed: Feed, ingest: Ingest) -> None:
    run = ingest(feed, b"")
    assert run.status == FeedRun.Status.FAILED
    assert "empty" in RejectedRecord.objects.get(run=run).reason


def test_a_header_only_file_fails_with_a_stored_reason(feed: Feed, ingest: Ingest) -> None:
    run = ingest(feed, HUB_HEADER.encode())
    assert run.status == FeedRun.Status.FAILED
    reject = RejectedRecord.objects.get(run=run)
    assert "no data rows" in reject.reason
    assert reject.line == 2


def test_a_ten_megabyte_field_is_rejected_and_its_neighbours_kept(
    feed: Feed, ingest: Ingest
) -> None:
    huge = "x" * (10 * 1024 * 1024)
    run = ingest(
        feed,
        hub_csv(
            "GOOD1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
            f"HB2,picked_up,2026-05-01T09:00:00+08:00,,,,CN,{huge},,,,",
            "GOOD2,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
        ),
    )
    assert run.status == FeedRun.Status.PARTIAL
    reject = RejectedRecord.objects.get(run=run)
    assert reject.line == 3
    assert "longer than the limit" in reject.reason
    assert len(reject.raw) < 100
    assert Shipment.objects.count() == 2


def test_a_truncated_last_line_is_rejected(feed: Feed, ingest: Ingest) -> None:
    payload = hub_csv("GOOD1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,") + b"HB2,picked_u"
    run = ingest(feed, payload)
    assert run.status == FeedRun.Status.PARTIAL
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.line, reject.raw) == (3, "HB2,picked_u")
    assert "truncated" in reject.reason


def test_an_unterminated_quote_is_rejected_with_its_line(feed: Feed, ingest: Ingest) -> None:
    payload = hub_csv(
        "GOOD1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
        'HB2,picked_up,2026-05-01T09:00:00+08:00,,,,CN,"never closed,,,,',
    )
    run = ingest(feed, payload)
    assert run.status == FeedRun.Status.PARTIAL
    assert RejectedRecord.objects.get(run=run).line == 3
    assert Shipment.objects.filter(tracking_number="GOOD1").exists()


def test_a_duplicate_row_inside_one_file_is_kept_once_and_is_not_a_rejection(
    feed: Feed, ingest: Ingest, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 13 item 7: the repeated row used to be stored as a "duplicate row" reject too, which
    # made a clean file `partial` and put a record with nothing to fix in the triage queue.
    row = "HB1,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,"
    with caplog.at_level("INFO", logger="warehouses.ingest.batches"):
        run = ingest(feed, hub_csv(row, "HB2,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,", row))
    assert TrackingEvent.objects.count() == 2
    assert (run.events_created, run.duplicates, run.rejected) == (2, 1, 0)
    assert not RejectedRecord.objects.filter(run=run).exists()
    assert run.status == FeedRun.Status.SUCCEEDED
    assert "1 row(s) repeat an earlier row of the file (kept once), e.g. line 4 = 2" in caplog.text


def test_json_lines_and_json_arrays_with_a_field_mapping(ingest: Ingest) -> None:
    mapping = {
        "tracking_number": "waybill",
        "event_code": "status",
        "event_time": "at",
        "location_code": "where.code",
    }
    feed = FeedFactory(format=Feed.Format.JSON, column_mapping=mapping)
    lines = (
        b'{"waybill": "JS1", "status": "picked_up", "at": "2026-05-01T09:00:00+08:00"}\n'
        b"not json\n"
        b'{"waybill": "JS2", "status": "departed", "at": "2026-05-01 10:00", "where": {"code": "CNSFH"}}\n'
    )
    run = ingest(feed, lines, name="a.jsonl")
    assert (run.events_created, run.rejected) == (2, 1), list(
        RejectedRecord.objects.values_list("reason")
    )
    assert RejectedRecord.objects.get(run=run).line == 2
    array_feed = FeedFactory(format=Feed.Format.JSON, column_mapping=mapping)
    array = (
        b'[\n  {"waybill": "JS3", "status": "picked_up", "at": 1777600000},\n'
        b'  {"waybill": "JS4",\n   "status": "nope", "at": "2026-05-01T09:00:00Z"}\n]\n'
    )
    run = ingest(array_feed, array, name="a.json")
    assert (run.events_created, run.rejected) == (1, 1)
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.line, reject.field) == (3, "event_code")
    assert TrackingEvent.objects.get(shipment__tracking_number="JS3").tz_source == "explicit"


def test_a_truncated_json_array_keeps_the_elements_before_the_cut(ingest: Ingest) -> None:
    feed = FeedFactory(format=Feed.Format.JSON)
    payload = (
        b'[{"tracking_number": "JS1", "event_code": "picked_up", "event_time": "2026-05-01T09:00:00Z"},\n'
        b' {"tracking_number": "JS2", "event_'
    )
    run = ingest(feed, payload)
    assert run.status == FeedRun.Status.PARTIAL
    assert run.events_created == 1
    assert "JSON" in RejectedRecord.objects.get(run=run).reason
