"""EPCIS end to end: parcels loaded into a container and moved across the border, purchase orders,
error declarations that retract events and loads, and the unit-membership bound."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipments.models import Shipment, StatusChange, TrackingEvent, TransportUnit, UnitMembership
from tests.warehouses.pipeline.formats import (
    Ingest,
    format_feed,
)
from warehouses.models import (
    FeedRun,
    RejectedRecord,
    RetractedEvent,
)
from warehouses.parsers.epcis import epc_to_key

pytestmark = pytest.mark.django_db

# --- EPCIS -----------------------------------------------------------------------------------

CONTAINER = "urn:epc:id:sscc:6901234.0000012345"
PARCELS = {
    "urn:epc:id:sscc:6901234.0000000011": "HEKP0001",
    "https://id.gs1.org/00/069012340000000028": "HEKP0002",
    "urn:epc:id:sscc:6901234.0000000035": "HEKP0003",
}
# The feed maps parcels by canonical key: any spelling of the SSCC finds its tracking number.
MAPPING = {epc_to_key(epc): tracking for epc, tracking in PARCELS.items()}


def _epcis(*events: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2024-03-01T00:00:00Z",
            "epcisBody": {"eventList": list(events)},
        },
        indent=2,
    ).encode()


def _aggregation(number: int, action: str, when: str, offset: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "AggregationEvent",
        "eventID": f"urn:uuid:6f1b0000-0000-4000-8000-{number:012d}",
        "eventTime": when,
        "eventTimeZoneOffset": offset,
        "parentID": CONTAINER,
        "action": action,
        **fields,
    }


BORDER_EVENTS = [
    _aggregation(
        1,
        "ADD",
        "2024-03-01T08:00:00+08:00",
        "+08:00",
        childEPCs=list(PARCELS),
        bizStep="loading",
        readPoint={"id": "https://hub.example.com/locode/CNSFH"},
    ),
    _aggregation(
        2,
        "OBSERVE",
        "2024-03-01T10:30:00+08:00",
        "+08:00",
        childEPCs=list(PARCELS),
        bizStep="departing",
        readPoint={"id": "https://hub.example.com/locode/CNSFH"},
    ),
    _aggregation(
        3,
        "OBSERVE",
        "2024-03-01T16:00:00+10:00",
        "+10:00",
        childEPCs=list(PARCELS),
        bizStep="arriving",
        readPoint={"id": "https://hub.example.com/locode/RUPGS"},
    ),
    _aggregation(
        4,
        "DELETE",
        "2024-03-01T17:00:00+10:00",
        "+10:00",
        childEPCs=["urn:epc:id:sscc:6901234.0000000035"],
        readPoint={"id": "https://hub.example.com/locode/RUPGS"},
    ),
    _aggregation(
        5,
        "OBSERVE",
        "2024-03-02T09:00:00+10:00",
        "+10:00",
        childEPCs=list(PARCELS)[:2],
        bizStep="transporting",
        disposition="in_transit",
        readPoint={"id": "https://hub.example.com/locode/RUUSS"},
    ),
]
BORDER_RUN = _epcis(*BORDER_EVENTS)


def test_an_epcis_document_loads_parcels_into_a_container_and_moves_them_across_the_border(
    ingest: Ingest,
) -> None:
    feed = format_feed("epcis", identifier_mapping=MAPPING)

    run = ingest(feed, BORDER_RUN)

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    unit = TransportUnit.objects.get()
    assert unit.number == epc_to_key(CONTAINER)  # "sscc:<18 digits>", one unit for any spelling
    # Events are on the unit, never copied per parcel.
    assert TrackingEvent.objects.filter(shipment__isnull=False).count() == 0
    codes = list(
        TrackingEvent.objects.filter(unit=unit)
        .order_by("occurred_at")
        .values_list("code", flat=True)
    )
    assert codes == ["loaded", "departed", "arrived", "in_transit"]
    members = {
        m.shipment.tracking_number: m
        for m in UnitMembership.objects.filter(unit=unit).select_related("shipment")
    }
    assert set(members) == set(PARCELS.values())
    assert members["HEKP0003"].unloaded_at is not None
    assert members["HEKP0003"].unloaded_at.isoformat() == "2024-03-01T07:00:00+00:00"
    assert members["HEKP0001"].unloaded_at is None
    crossed = Shipment.objects.get(tracking_number="HEKP0001")
    assert crossed.status == "in_transit"
    assert crossed.status_event is not None and crossed.status_event.code == "in_transit"
    assert crossed.status_event.country == "RU"
    # Unloaded at the border before the train went on: its last event is the arrival.
    left = Shipment.objects.get(tracking_number="HEKP0003")
    assert left.status_event is not None and left.status_event.code == "arrived"
    assert left.status_event.location_code == "RUPGS"


def test_an_epcis_error_declaration_retracts_the_event_and_recomputes_with_an_audit(
    ingest: Ingest,
) -> None:
    feed = format_feed("epcis", identifier_mapping=MAPPING)
    ingest(feed, BORDER_RUN)
    wrong = _aggregation(
        5,
        "OBSERVE",
        "2024-03-02T09:00:00+10:00",
        "+10:00",
        childEPCs=list(PARCELS)[:2],
        bizStep="transporting",
        disposition="in_transit",
        readPoint={"id": "https://hub.example.com/locode/RUUSS"},
        errorDeclaration={
            "declarationTime": "2024-03-03T10:00:00+10:00",
            "reason": "incorrect_data",
        },
    )

    run = ingest(feed, _epcis(wrong))

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    assert not TrackingEvent.objects.filter(code="in_transit").exists()
    audit = RetractedEvent.objects.get()
    assert audit.source_event_id.endswith("000000000005")
    assert (audit.code, audit.run_id) == ("in_transit", run.pk)
    assert audit.event_data["location_code"] == "RUUSS"
    shipment = Shipment.objects.get(tracking_number="HEKP0001")
    assert shipment.status_event is not None and shipment.status_event.code == "arrived"
    assert StatusChange.objects.filter(shipment=shipment).exists()
    # The retracted event delivered again is not recorded again.
    replay = ingest(feed, BORDER_RUN, reprocess=True)
    assert not TrackingEvent.objects.filter(code="in_transit").exists()
    assert RejectedRecord.objects.filter(run=replay, field="eventID").count() == 1


def test_retracting_a_parcels_only_event_returns_it_to_pending(ingest: Ingest) -> None:
    feed = format_feed("epcis", identifier_mapping=MAPPING)
    shipped = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:6f1b0000-0000-4000-8000-00000000aaaa",
        "eventTime": "2024-03-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["urn:epc:id:sscc:6901234.0000000011"],
        "action": "OBSERVE",
        "bizStep": "shipping",
    }
    ingest(feed, _epcis(shipped))
    assert Shipment.objects.get(tracking_number="HEKP0001").status == "in_transit"

    declaration = {**shipped, "errorDeclaration": {"declarationTime": "2024-03-02T00:00:00Z"}}
    ingest(feed, _epcis(declaration))

    shipment = Shipment.objects.get(tracking_number="HEKP0001")
    assert (shipment.status, shipment.status_event_id, shipment.last_event_at) == (
        "pending",
        None,
        None,
    )


def test_a_retraction_from_another_feed_cannot_withdraw_an_event(ingest: Ingest) -> None:
    ingest(format_feed("epcis", identifier_mapping=MAPPING), BORDER_RUN)
    wrong = _aggregation(
        2,
        "OBSERVE",
        "2024-03-01T10:30:00+08:00",
        "+08:00",
        childEPCs=list(PARCELS),
        bizStep="departing",
        errorDeclaration={"declarationTime": "2024-03-03T10:00:00+10:00"},
    )

    run = ingest(format_feed("epcis"), _epcis(wrong))

    assert TrackingEvent.objects.filter(code="departed").exists()
    reject = RejectedRecord.objects.get(run=run)
    assert reject.field == "eventID"
    assert "no event with that eventID has been recorded from this feed" in reject.reason


def test_an_epcis_transaction_event_links_a_purchase_order_to_the_parcel(ingest: Ingest) -> None:
    link = {
        "type": "TransactionEvent",
        "eventTime": "2024-02-28T16:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:6901234000004:PO-2024-0042"}
        ],
        "epcList": ["https://id.gs1.org/00/069012340000000028"],
        "action": "ADD",
    }

    run = ingest(format_feed("epcis", identifier_mapping=MAPPING), _epcis(link))

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    assert Shipment.objects.get(tracking_number="HEKP0002").order_number == (
        "urn:epcglobal:cbv:bt:6901234000004:PO-2024-0042"
    )


def test_retracting_an_aggregation_withdraws_the_loads_and_unloads_it_made(
    ingest: Ingest,
) -> None:
    # The ADD that put the parcels in the container is declared wrong: they were never inside,
    # so the container's events are no longer theirs. The DELETE that took HEKP0003 out is
    # declared wrong too (it stayed aboard): the container's later event is its again.
    feed = format_feed("epcis", identifier_mapping=MAPPING)
    ingest(feed, BORDER_RUN)
    assert Shipment.objects.get(tracking_number="HEKP0003").status_event.code == "arrived"

    unload, load = BORDER_EVENTS[3], BORDER_EVENTS[0]
    assert (unload["action"], load["action"]) == ("DELETE", "ADD")
    unload_withdrawn = {
        **unload,
        "errorDeclaration": {"declarationTime": "2024-03-03T10:00:00+10:00"},
    }
    run = ingest(feed, _epcis(unload_withdrawn))

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    reopened = UnitMembership.objects.get(shipment__tracking_number="HEKP0003")
    assert (reopened.unloaded_at, reopened.unload_event_id) == (None, "")
    stayed = Shipment.objects.get(tracking_number="HEKP0003")
    assert stayed.status_event is not None and stayed.status_event.code == "in_transit"
    audit = RetractedEvent.objects.get(code="membership_unload")
    assert (audit.run_id, audit.shipment_id, audit.line) == (run.pk, stayed.pk, 10)
    assert audit.event_data["unloaded_at"].startswith("2024-03-01T07:00:00")

    load_withdrawn = {**load, "errorDeclaration": {"declarationTime": "2024-03-03T11:00:00+10:00"}}
    run = ingest(feed, _epcis(load_withdrawn))

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    assert not UnitMembership.objects.exists()
    assert RetractedEvent.objects.filter(code="membership_load").count() == 3
    # The ADD's own unit event ("loaded") is withdrawn with it, as any event.
    assert RetractedEvent.objects.filter(code="loaded").count() == 1
    for tracking in PARCELS.values():
        parcel = Shipment.objects.get(tracking_number=tracking)
        assert (parcel.status, parcel.status_event_id, parcel.last_event_at) == (
            "pending",
            None,
            None,
        )

    # The same declaration again changes nothing and says nothing; the withdrawn ADD delivered
    # again is not applied again.
    again = ingest(feed, _epcis(load_withdrawn), reprocess=True)
    assert (again.status, again.rejected) == (FeedRun.Status.SUCCEEDED, 0)
    replay = ingest(feed, BORDER_RUN, reprocess=True)
    assert not UnitMembership.objects.exists()
    retracted = RejectedRecord.objects.filter(run=replay, field="eventID")
    # The ADD (its loads and its unit event, one reject per line) and the DELETE
    assert sorted(retracted.values_list("line", flat=True)) == [10, 61]
    assert all("was retracted by an error declaration" in r.reason for r in retracted)


def test_a_retraction_from_another_feed_cannot_withdraw_a_load(ingest: Ingest) -> None:
    ingest(format_feed("epcis", identifier_mapping=MAPPING), BORDER_RUN)
    wrong = {**BORDER_EVENTS[0], "errorDeclaration": {"declarationTime": "2024-03-03T10:00:00Z"}}
    run = ingest(format_feed("epcis"), _epcis(wrong))
    assert UnitMembership.objects.count() == 3
    reject = RejectedRecord.objects.get(run=run)
    assert "no event with that eventID has been recorded from this feed" in reject.reason


@pytest.mark.parametrize(
    "delivered_at",
    ["2024-03-01T17:00:00+10:00", "2024-03-01T12:00:00+10:00"],
    ids=["at-the-unload-instant", "five-hours-before-the-unload"],
)
def test_retracting_a_units_delivery_resets_a_parcel_unloaded_at_that_instant(
    ingest: Ingest, delivered_at: str
) -> None:
    # A parcel is inside its unit up to and including the unload instant (the timeline, the
    # recorder and the estimates agree), so the retraction must find it there too.
    feed = format_feed("epcis", identifier_mapping=MAPPING)
    parcel = "urn:epc:id:sscc:6901234.0000000035"
    loaded = _aggregation(
        1, "ADD", "2024-03-01T08:00:00+08:00", "+08:00", childEPCs=[parcel], bizStep="loading"
    )
    delivered = _aggregation(
        2, "OBSERVE", delivered_at, "+10:00", childEPCs=[parcel], bizStep="retail_selling"
    )
    unloaded = _aggregation(3, "DELETE", "2024-03-01T17:00:00+10:00", "+10:00", childEPCs=[parcel])
    ingest(feed, _epcis(loaded, delivered, unloaded))
    assert Shipment.objects.get(tracking_number="HEKP0003").status == "delivered"

    retraction = {**delivered, "errorDeclaration": {"declarationTime": "2024-03-02T00:00:00Z"}}
    run = ingest(feed, _epcis(retraction))

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    shipment = Shipment.objects.get(tracking_number="HEKP0003")
    assert shipment.status_event is not None
    assert (shipment.status, shipment.status_event.code) == ("in_transit", "loaded")
