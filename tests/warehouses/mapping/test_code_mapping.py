"""One mapping model for every format (issue 13, docs/mapping.md): the feed's code mapping
first, then the format's standard table, then the feed's unknown-code policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from shipments.models import Shipment, TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from tests.warehouses.mapping.conftest import epcis, iftsta, object_event, x12_214
from warehouses.models import Feed, FeedRun, RejectedRecord

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]

ACME_STEP = "https://acme.example.com/bizstep/weighed-at-border"
ASSET = "urn:epc:id:giai:952005385.w2"


@dataclass(frozen=True)
class Case:
    fmt: str
    payload: bytes
    key: str  # the partner code as the feed's mapping writes it
    field: str  # where the code is, as the reject names it
    tracking: str


CASES = [
    Case("edifact", iftsta(("HEK300000001CN", "VD::22")), "VD", "STS02", "HEK300000001CN"),
    Case("x12", x12_214("VD"), "VD", "AT7-01", "HEK200000001CN"),
    Case(
        "epcis",
        epcis(object_event(ASSET, bizStep=ACME_STEP)),
        f"bizstep:{ACME_STEP}",
        "/epcisBody/eventList/0/bizStep",
        ASSET,
    ),
    Case(
        "hub-csv",
        hub_csv("HEK400000001CN,GATE-OUT,2024-03-05T16:30:00+08:00,,,,CN,,,,,"),
        "GATE-OUT",
        "event_code",
        "HEK400000001CN",
    ),
]
IDS = [case.fmt for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_code_outside_the_standard_table_is_rejected_naming_it_and_how_to_map_it(
    ingest: Ingest, case: Case
) -> None:
    run = ingest(FeedFactory(format=case.fmt), case.payload)

    assert run.status == FeedRun.Status.FAILED
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.field, reject.unknown_code) == (case.field, case.key)
    assert f"{case.key!r} to an event code in the feed's code mapping" in reject.reason
    assert "or set the feed's unknown-code policy to exception" in reject.reason
    assert not Shipment.objects.exists()


def test_the_edifact_reject_reason_names_the_carriers_code(ingest: Ingest) -> None:
    run = ingest(FeedFactory(format="edifact"), iftsta(("HEK300000001CN", "VD::22")))

    assert RejectedRecord.objects.get(run=run).reason == (
        "unknown status code 'VD' (not mapped from UN/ECE Rec 24): map 'VD' to an event code "
        "in the feed's code mapping, or set the feed's unknown-code policy to exception"
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_code_the_feed_maps_becomes_the_mapped_event(ingest: Ingest, case: Case) -> None:
    feed = FeedFactory(format=case.fmt, code_mapping={case.key: "departed"})

    run = ingest(feed, case.payload)

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    event = TrackingEvent.objects.get()
    assert (event.shipment.tracking_number, event.code) == (case.tracking, "departed")
    assert event.occurred_at.isoformat() == "2024-03-05T08:30:00+00:00"
    assert Shipment.objects.get().status == "in_transit"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_with_the_exception_policy_an_unmapped_code_is_an_exception_event(
    ingest: Ingest, case: Case
) -> None:
    feed = FeedFactory(format=case.fmt, unknown_code_policy=Feed.UnknownCodePolicy.EXCEPTION)

    run = ingest(feed, case.payload)

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    event = TrackingEvent.objects.get()
    assert (event.shipment.tracking_number, event.code) == (case.tracking, "exception")
    assert f"unmapped partner code {case.key!r}" in event.description
    assert event.extra["partner_code"] == case.key


def test_mapping_one_carrier_code_leaves_its_other_unknown_code_rejected(ingest: Ingest) -> None:
    # Real carriers' IFTSTA: `STS+1+VD::22` (code VD, agency 22) and a bare `STS+1+P`.
    feed = FeedFactory(format="edifact", code_mapping={"VD": "departed"})

    run = ingest(feed, iftsta(("HEK300000001CN", "VD::22"), ("HEK300000002CN", "P")))

    assert run.status == FeedRun.Status.PARTIAL
    assert TrackingEvent.objects.get().code == "departed"
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.unknown_code, reject.field) == ("P", "STS02")
    assert reject.reason.startswith("unknown status code 'P'")


def test_the_feeds_mapping_wins_over_the_standard_table(ingest: Ingest) -> None:
    # Rec 24 code 24 is "Departure, completed"; this carrier uses it for its loading.
    feed = FeedFactory(format="edifact", code_mapping={"24": "loaded"})

    ingest(feed, iftsta(("HEK300000001CN", "24")))

    assert TrackingEvent.objects.get().code == "loaded"


def test_a_cbv_step_that_tracks_nothing_is_rejected_even_with_the_exception_policy(
    ingest: Ingest,
) -> None:
    document = epcis(object_event(ASSET, bizStep="commissioning"))
    feed = FeedFactory(format="epcis", unknown_code_policy=Feed.UnknownCodePolicy.EXCEPTION)

    run = ingest(feed, document)

    reject = RejectedRecord.objects.get(run=run)
    assert reject.unknown_code == "bizstep:commissioning"
    assert reject.reason.startswith("bizStep 'commissioning' is not a parcel tracking event")
    assert not TrackingEvent.objects.exists()
    # Mapped, it is recorded (a partner that commissions labels at dispatch, say).
    Feed.objects.filter(pk=feed.pk).update(code_mapping={"bizstep:commissioning": "info_received"})
    ingest(feed, document, reprocess=True)
    assert TrackingEvent.objects.get().code == "info_received"


def test_an_epcis_disposition_outside_the_cbv_is_mapped_under_its_disp_key(
    ingest: Ingest,
) -> None:
    feed = FeedFactory(format="epcis", code_mapping={"disp:urn:acme:disp:held": "customs_held"})

    run = ingest(
        feed, epcis(object_event(ASSET, bizStep="holding", disposition="urn:acme:disp:held"))
    )

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    assert TrackingEvent.objects.get().code == "customs_held"
