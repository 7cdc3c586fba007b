"""Every shared sample and fixture through the real pipeline (feed_run_execute), in the test's
transaction and on the worker path: the events it gives or its precise rejection."""

from __future__ import annotations

import io

import pytest

from shipments.models import Shipment, TrackingEvent
from tests.warehouses.pipeline.formats import (
    Ingest,
    first_reject,
    format_feed,
    sample_bytes,
)
from warehouses.ingest.runs import feed_run_create, feed_run_execute
from warehouses.models import (
    FeedRun,
    RejectedRecord,
)

pytestmark = pytest.mark.django_db

# (sample, format, run status, events created, event codes, first reject: (line, field, start of
# the reason)). X12 and EDIFACT rows name our own fixtures (the public samples of that kind carry
# no licence); the others are public samples in tests/data. The CEB samples repeat one record ten
# times; the repeats are duplicates kept once, not rejects, so a sample with nothing else wrong
# succeeds (it was `partial` while repeats were also stored as "duplicate row" rejects, issue 13
# item 7).
SAMPLE_OUTCOMES: list[tuple[str, str, str, int, set[str], tuple[int, str, str] | None]] = [
    (
        "x12/CorruptIsa.txt",
        "x12",
        "failed",
        0,
        set(),
        (1, "ISA", "expected an ISA interchange header, found 'SA"),
    ),
    (
        "x12/CorruptSt.txt",
        "x12",
        "failed",
        0,
        set(),
        (3, "ST", "expected an ST transaction set header, found"),
    ),
    (
        "x12/DuplicateInterchange.txt",
        "x12",
        "failed",
        0,
        set(),
        (3, "ST01", "unsupported transaction set 850 (supported: 2"),
    ),
    (
        "x12/Rail404.txt",
        "x12",
        "failed",
        0,
        set(),
        (3, "ST01", "unsupported transaction set 404 (supported: 2"),
    ),
    (
        # The 856's only place is its ship-from party's name (N1*SF*ACME SUPPLY, no N4): the
        # BSN's local time has no zone the hub can know (it used to take the warehouse's).
        "x12/Notice856.txt",
        "x12",
        "failed",
        0,
        set(),
        (5, "time_zone", "zone unknown for 'ACME SUPPLY'"),
    ),
    (
        "x12/Status214.txt",
        "x12",
        "partial",
        1,
        {"arrived"},
        (15, "GE01", "GE01 says 2 transaction sets but functional g"),
    ),
    (
        "x12/Advice945PlaceholderDate.txt",
        "x12",
        "failed",
        0,
        set(),
        (4, "W06-03", "invalid date 'CCYYMMDD', expected CCYYMMDD"),
    ),
    (
        "edifact/CorruptUnb.txt",
        "edifact",
        "failed",
        0,
        set(),
        (1, "UNB", "interchange must begin with UNB, found segmen"),
    ),
    (
        "edifact/CorruptUnh.txt",
        "edifact",
        "failed",
        0,
        set(),
        (2, "UNH", "expected a message header UNH, found segment"),
    ),
    (
        "edifact/DespatchAdvice.txt",
        "edifact",
        "failed",
        0,
        set(),
        (2, "UNH02", "unsupported message type DESADV"),
    ),
    (
        "edifact/Instruction.txt",
        "edifact",
        "failed",
        0,
        set(),
        (2, "UNH02", "unsupported message type IFTMIN"),
    ),
    (
        # The customs refusal happened at "CUSTOMS OFFICE FRANKFURT AIRPORT", a free-text place
        # with no code: its date-only local time has no zone the hub can know.
        "edifact/StatusReport.txt",
        "edifact",
        "partial",
        2,
        {"delivered", "in_transit"},
        (16, "time_zone", "zone unknown for 'CUSTOMS OFFICE FRANKFURT AIRPORT'"),
    ),
    (
        "epcis/ErrorDeclarationAndCorrectiveEvent.jsonld",
        "epcis",
        "failed",
        0,
        set(),
        (10, "eventID", "error declaration retracts event 'urn:uuid:37"),
    ),
    (
        "epcis/Example-TransactionEvents-2020_07_03y.jsonld",
        "epcis",
        "partial",
        1,
        {"in_transit"},
        (7, "/epcisBody/eventList/0/bizStep", "unknown bizStep 'http://epcis.example.org/hc/"),
    ),
    (
        "epcis/Example_9.6.1-ObjectEvent.jsonld",
        "epcis",
        "succeeded",
        3,
        {"warehouse_dispatched", "warehouse_received"},
        None,
    ),
    ("epcis/Example_9.6.2-ObjectEvent.jsonld", "epcis", "succeeded", 0, set(), None),
    (
        "epcis/Example_9.6.3-AggregationEvent.jsonld",
        "epcis",
        "succeeded",
        1,
        {"warehouse_received"},
        None,
    ),
    (
        "epcis/Example_9.6.4-TransformationEvent.jsonld",
        "epcis",
        "failed",
        0,
        set(),
        (10, "/epcisBody/eventList/0/type", "unsupported EPCIS event type 'TransformationE"),
    ),
    (
        "epcis/aggregation_event_all_possible_fields.jsonld",
        "epcis",
        "failed",
        0,
        set(),
        (7, "/epcisBody/eventList/0/sensorElementList/0/type", "does not match the EPCIS 2.0"),
    ),
    (
        "epcis/object_event_all_possible_fields.jsonld",
        "epcis",
        "failed",
        0,
        set(),
        (7, "/epcisBody/eventList/0/sensorElementList/0/type", "does not match the EPCIS 2.0"),
    ),
    (
        "epcis/transaction_event_all_possible_fields.jsonld",
        "epcis",
        "failed",
        0,
        set(),
        (7, "/epcisBody/eventList/0/sensorElementList/0/type", "does not match the EPCIS 2.0"),
    ),
    ("ceb/export/CEB213Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/export/CEB214Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/export/CEB215Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (5, "InvtRefundDetail", "unsupported message CEB215 (InvtRefundDetail)"),
    ),
    ("ceb/export/CEB216Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/export/CEB303Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/export/CEB304Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB304 receipt (returnStatus 2) has no logist"),
    ),
    ("ceb/export/CEB403Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/export/CEB404Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB404 receipt (returnStatus 2) has no logist"),
    ),
    ("ceb/export/CEB505Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/export/CEB506Message.xml", "ceb", "succeeded", 1, {"customs_export_submitted"}, None),
    ("ceb/export/CEB507Message.xml", "ceb", "succeeded", 3, {"arrived"}, None),
    (
        "ceb/export/CEB508Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB508 receipt (returnStatus 2) has no logist"),
    ),
    ("ceb/export/CEB509Message.xml", "ceb", "succeeded", 1, {"departed"}, None),
    (
        "ceb/export/CEB510Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB510 receipt (returnStatus 2) has no logist"),
    ),
    (
        "ceb/export/CEB603Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (39, "country", "country: unknown customs country code '001'"),
    ),
    (
        "ceb/export/CEB604Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB604 receipt (returnStatus 2) has no logist"),
    ),
    ("ceb/export/CEB605Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/export/CEB606Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/export/CEB607Message.xml", "ceb", "succeeded", 1, {"customs_export_submitted"}, None),
    (
        "ceb/export/CEB608Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB608 receipt (returnStatus 2) has no logist"),
    ),
    (
        "ceb/export/CEB701Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "SummaryApply", "unsupported message CEB701 (SummaryApply)"),
    ),
    (
        "ceb/export/CEB702Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "logisticsNo", "CEB702 receipt (returnStatus 2) has no logist"),
    ),
    (
        "ceb/export/CEB792Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (4, "SummaryResult", "unsupported message CEB792 (SummaryResult)"),
    ),
    ("ceb/import/CEB311Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/import/CEB312Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (3, "logisticsNo", "CEB312 receipt (returnStatus 2) has no logist"),
    ),
    ("ceb/import/CEB411Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/import/CEB412Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (3, "logisticsNo", "CEB412 receipt (returnStatus 120) has no logi"),
    ),
    ("ceb/import/CEB511Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/import/CEB512Message.xml", "ceb", "succeeded", 1, {"customs_import_submitted"}, None),
    (
        "ceb/import/CEB513Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (12, "logisticsStatus", "unknown logisticsStatus 'R' (the specificatio"),
    ),
    (
        "ceb/import/CEB514Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (8, "returnStatus", "unknown returnStatus '18'"),
    ),
    ("ceb/import/CEB621Message.xml", "ceb", "succeeded", 1, {"customs_import_submitted"}, None),
    ("ceb/import/CEB622Message.xml", "ceb", "succeeded", 0, set(), None),
    ("ceb/import/CEB623Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/import/CEB624Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (12, "returnStatus", "unknown returnStatus '23'"),
    ),
    ("ceb/import/CEB625Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/import/CEB626Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (12, "returnStatus", "unknown returnStatus '18'"),
    ),
    ("ceb/import/CEB711Message.xml", "ceb", "succeeded", 1, {"arrived"}, None),
    (
        "ceb/import/CEB712Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (10, "returnStatus", "unknown returnStatus '18'"),
    ),
    (
        "ceb/receipts/CEB312Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (3, "logisticsNo", "CEB312 receipt (returnStatus 2) has no logist"),
    ),
    (
        "ceb/receipts/CEB412Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (3, "logisticsNo", "CEB412 receipt (returnStatus 120) has no logi"),
    ),
    ("ceb/receipts/CEB512Message.xml", "ceb", "succeeded", 1, {"customs_import_submitted"}, None),
    (
        "ceb/receipts/CEB514Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (8, "returnStatus", "unknown returnStatus '18'"),
    ),
    ("ceb/receipts/CEB622Message.xml", "ceb", "succeeded", 0, set(), None),
    (
        "ceb/receipts/CEB624Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (12, "returnStatus", "unknown returnStatus '23'"),
    ),
    (
        "ceb/receipts/CEB626Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (12, "returnStatus", "unknown returnStatus '18'"),
    ),
    (
        "ceb/receipts/CEB712Message.xml",
        "ceb",
        "failed",
        0,
        set(),
        (10, "returnStatus", "unknown returnStatus '18'"),
    ),
]


@pytest.mark.parametrize(
    ("sample", "fmt", "status", "created", "codes", "reject"),
    SAMPLE_OUTCOMES,
    ids=[row[0] for row in SAMPLE_OUTCOMES],
)
def test_every_shared_sample_gives_its_expected_events_or_precise_rejection(
    ingest: Ingest,
    sample: str,
    fmt: str,
    status: str,
    created: int,
    codes: set[str],
    reject: tuple[int, str, str] | None,
) -> None:
    run = ingest(format_feed(fmt), sample_bytes(sample), name=sample)

    _assert_sample_outcome(run, status, created, codes, reject)


def _assert_sample_outcome(
    run: FeedRun, status: str, created: int, codes: set[str], reject: tuple[int, str, str] | None
) -> None:
    assert run.status == status
    assert run.events_created == created
    assert set(TrackingEvent.objects.filter(run=run).values_list("code", flat=True)) == codes
    first = first_reject(run)
    if reject is None:
        assert first is None
    else:
        assert first is not None
        assert (first.line, first.field) == reject[:2]
        assert first.reason.startswith(reject[2])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("sample", "fmt", "status", "created", "codes", "reject"),
    SAMPLE_OUTCOMES,
    ids=[row[0] for row in SAMPLE_OUTCOMES],
)
def test_every_shared_sample_gives_the_same_outcome_through_the_worker_path(
    sample: str,
    fmt: str,
    status: str,
    created: int,
    codes: set[str],
    reject: tuple[int, str, str] | None,
) -> None:
    # The `ingest` fixture runs inside the test's transaction; a worker does not, and then each
    # batch finds and draws its shipments first and writes them after the COPY, unawaited.
    feed = format_feed(fmt)
    run = feed_run_create(feed=feed, content=io.BytesIO(sample_bytes(sample)), enqueue=False)
    run = feed_run_execute(run_id=run.pk)

    _assert_sample_outcome(run, status, created, codes, reject)


def test_a_duplicate_interchange_rejects_the_repeated_isa(ingest: Ingest) -> None:
    run = ingest(format_feed("x12"), sample_bytes("x12/DuplicateInterchange.txt"))

    reject = RejectedRecord.objects.get(run=run, line=11)
    assert reject.field == "ISA13"
    assert "duplicate interchange control number 000000737 from sender HUBCARRIER" in reject.reason


def test_x12_statuses_land_on_their_shipments_in_the_senders_local_time(
    ingest: Ingest,
) -> None:
    ingest(format_feed("x12"), sample_bytes("x12/Status214.txt"))

    shipment = Shipment.objects.get(tracking_number="PRO778")
    event = TrackingEvent.objects.get(shipment=shipment)
    assert (shipment.status, event.code, event.tz_source) == (
        "in_transit",
        "arrived",
        "separate_field",
    )
    assert event.occurred_at.isoformat() == "2024-09-18T12:15:00+00:00"  # 07:15 CDT


def test_edifact_statuses_move_their_shipments(ingest: Ingest) -> None:
    ingest(format_feed("edifact"), sample_bytes("edifact/StatusReport.txt"))

    statuses = dict(Shipment.objects.values_list("tracking_number", "status"))
    # HB1003's customs refusal at a free-text place (Frankfurt airport, no code) is rejected: its
    # local date has no zone the hub can know.
    assert {k: v for k, v in statuses.items() if k != "HB1003"} == {
        "HB1001": "delivered",
        "HB1002": "in_transit",
    }
    assert not TrackingEvent.objects.filter(shipment__tracking_number="HB1003").exists()
    # The two statuses name no place: kept empty (not the receiving warehouse's), in the
    # warehouse's zone as events of its own feed.
    assert set(TrackingEvent.objects.values_list("location_name", "location_code", "country")) == {
        ("", "", "")
    }
