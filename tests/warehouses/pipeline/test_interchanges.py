"""X12 and EDIFACT interchanges end to end: multi-set files, duplicate control numbers, release
characters."""

from __future__ import annotations

import pytest

from shipments.models import Shipment, TrackingEvent
from tests.warehouses.pipeline.formats import (
    FIXTURES,
    Ingest,
    format_feed,
)
from warehouses.models import (
    FeedRun,
    InterchangeSeen,
    RejectedRecord,
)

pytestmark = pytest.mark.django_db

# --- X12 -------------------------------------------------------------------------------------

MULTI_GROUP = FIXTURES / "x12" / "MultiGroup.txt"


def test_a_multi_set_x12_interchange_records_every_valid_set_and_rejects_the_broken_ones(
    ingest: Ingest,
) -> None:
    run = ingest(format_feed("x12"), MULTI_GROUP.read_bytes())

    assert run.status == FeedRun.Status.PARTIAL
    assert set(Shipment.objects.values_list("tracking_number", flat=True)) >= {
        "SHIP-1001",
        "PRO-780",
        "SHP-42",
        "ASN-9001",
        "SHIP-1003",
    }
    ship = Shipment.objects.get(tracking_number="SHIP-1001")
    assert ship.status == "delivered"
    assert ship.order_number == "PO-5566"
    rejects = {(r.line, r.field) for r in RejectedRecord.objects.filter(run=run)}
    assert {(28, "SE01"), (32, "AT7-01")} <= rejects
    assert set(InterchangeSeen.objects.values_list("interchange", flat=True)) == {
        "x12:HUBSENDER/HUBRECEIVER/000000901",
        "x12:HUBSENDER/HUBRECEIVER/000000902",
    }


def test_the_same_x12_interchange_delivered_in_a_second_file_is_rejected_as_a_duplicate(
    ingest: Ingest,
) -> None:
    feed = format_feed("x12")
    first = ingest(feed, MULTI_GROUP.read_bytes(), name="first.edi")
    events = TrackingEvent.objects.count()

    # A different file (one more trailing newline) carrying the same interchanges.
    second = ingest(feed, MULTI_GROUP.read_bytes() + b"\n", name="second.edi")

    assert second.status == FeedRun.Status.FAILED
    assert second.events_created == 0
    assert TrackingEvent.objects.count() == events
    duplicate = RejectedRecord.objects.filter(run=second, field="ISA13").order_by("line").first()
    assert duplicate is not None
    assert duplicate.reason.startswith(
        "duplicate interchange: ISA13 control number 000000901 from sender HUBSENDER to "
        f"receiver HUBRECEIVER was already received in run {first.pk}"
    )


def test_reprocessing_the_same_x12_payload_is_not_a_duplicate_interchange(
    ingest: Ingest,
) -> None:
    feed = format_feed("x12")
    ingest(feed, MULTI_GROUP.read_bytes())

    replay = ingest(feed, MULTI_GROUP.read_bytes(), reprocess=True)

    assert replay.events_created == 0
    assert replay.duplicates > 0
    assert not RejectedRecord.objects.filter(run=replay, reason__contains="duplicate interch")


def test_another_feed_may_reuse_a_control_number(ingest: Ingest) -> None:
    ingest(format_feed("x12"), MULTI_GROUP.read_bytes())

    other = ingest(format_feed("x12"), MULTI_GROUP.read_bytes() + b"\n")

    assert not RejectedRecord.objects.filter(run=other, field="ISA13")


# --- EDIFACT ---------------------------------------------------------------------------------

IFTSTA_UNA = """UNA:+.? '
UNB+UNOC:3+RZDSENDER:ZZ+HUB:ZZ+240305:1200+ICR77'
UNH+M1+IFTSTA:D:01B:UN'
BGM+23+RPT?+77+9'
DTM+137:202403051200:203'
CNI+1+HEK100000077CN'
STS+1+24'
DTM+334:202403050830:203'
LOC+5+CNHEK:139:6:Heihe?:East?+Yard'
STS+1+16'
DTM+334:202403051630?+08:303'
LOC+16+RUBQS:139:6:Blagoveshchensk ?'Customs?''
UNT+11+M1'
UNZ+1+ICR77'
"""


def test_iftsta_with_una_and_release_characters_records_both_statuses(ingest: Ingest) -> None:
    run = ingest(format_feed("edifact"), IFTSTA_UNA.encode())

    assert (run.status, run.events_created) == (FeedRun.Status.SUCCEEDED, 2)
    departed, crossed = TrackingEvent.objects.order_by("occurred_at")
    assert (departed.code, departed.location_name) == ("departed", "Heihe:East+Yard")
    assert departed.occurred_at.isoformat() == "2024-03-05T00:30:00+00:00"  # Heihe local time
    assert (crossed.code, crossed.location_name, crossed.country) == (
        "border_crossed",
        "Blagoveshchensk 'Customs'",
        "RU",
    )
    shipment = Shipment.objects.get(tracking_number="HEK100000077CN")
    assert (shipment.status, shipment.stage) == ("in_transit", "line_haul")


def test_the_same_edifact_interchange_in_a_new_file_is_rejected(ingest: Ingest) -> None:
    feed = format_feed("edifact")
    ingest(feed, IFTSTA_UNA.encode())

    again = ingest(feed, IFTSTA_UNA.encode() + b"\n")

    assert again.events_created == 0
    reasons = set(RejectedRecord.objects.filter(run=again).values_list("field", "reason"))
    assert all(field == "UNB05" for field, _ in reasons)
    assert any("UNB05 control reference ICR77 from sender RZDSENDER" in r for _, r in reasons)
