"""No phantom rows (issue 13): a rejected record leaves no shipment, unit or document behind."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipments.models import Shipment, TrackingEvent, TransportUnit, UnitMembership
from tests.conftest import FeedFactory
from tests.warehouses.mapping.conftest import epcis, object_event
from warehouses.models import CustomsDocument, FeedRun, RejectedRecord, RetractedEvent

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]

CONTAINER = "urn:epc:id:sscc:6901234.0000012345"
PARCEL = "urn:epc:id:sscc:6901234.0000000011"


def _unload(**fields: object) -> dict[str, object]:
    return {
        "type": "AggregationEvent",
        "eventTime": "2024-03-01T17:00:00+10:00",
        "eventTimeZoneOffset": "+10:00",
        "parentID": CONTAINER,
        "action": "DELETE",
        **fields,
    }


def _nothing_left() -> None:
    assert list(Shipment.objects.values_list("tracking_number", flat=True)) == []
    assert list(TransportUnit.objects.values_list("number", flat=True)) == []
    assert not UnitMembership.objects.exists()
    assert not TrackingEvent.objects.exists()
    assert not CustomsDocument.objects.exists()
    assert not RetractedEvent.objects.exists()


def test_an_epcis_document_whose_records_are_all_rejected_leaves_no_shipment_or_unit(
    ingest: Ingest,
) -> None:
    document = epcis(
        # Unloads from a container that was never loaded: nothing to close.
        _unload(childEPCs=[PARCEL]),
        _unload(),
        # A bizStep outside the CBV with the feed's policy "reject".
        object_event("urn:epc:id:sscc:6901234.0000000028", bizStep="urn:example:bizstep:x"),
        # An error declaration naming an event this feed never sent.
        object_event(
            "urn:epc:id:sscc:6901234.0000000035",
            bizStep="shipping",
            eventID="urn:uuid:00000000-0000-4000-8000-000000000001",
            errorDeclaration={"declarationTime": "2024-03-02T00:00:00Z"},
        ),
    )

    run = ingest(FeedFactory(format="epcis"), document)

    assert run.status == FeedRun.Status.FAILED
    assert RejectedRecord.objects.filter(run=run).count() == 4
    _nothing_left()


def test_a_rejected_retraction_of_an_unload_leaves_nothing(ingest: Ingest) -> None:
    document = epcis(
        _unload(
            childEPCs=[PARCEL],
            eventID="urn:uuid:00000000-0000-4000-8000-000000000002",
            errorDeclaration={"declarationTime": "2024-03-02T00:00:00Z"},
        ),
        _unload(childEPCs=[PARCEL]),
    )

    run = ingest(FeedFactory(format="epcis"), document)

    assert run.status == FeedRun.Status.FAILED
    reasons = sorted(RejectedRecord.objects.filter(run=run).values_list("field", flat=True))
    assert reasons == ["eventID", "unloaded_at"]
    _nothing_left()


def test_a_load_then_its_unload_in_one_document_still_creates_the_unit_and_parcel(
    ingest: Ingest,
) -> None:
    load = {
        **_unload(childEPCs=[PARCEL]),
        "action": "ADD",
        "eventTime": "2024-03-01T08:00:00+08:00",
    }
    load["eventTimeZoneOffset"] = "+08:00"

    run = ingest(FeedFactory(format="epcis"), epcis(load, _unload(childEPCs=[PARCEL])))

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    membership = UnitMembership.objects.get()
    assert membership.unloaded_at is not None
