"""The CEB import chain end to end: the three-document match, redelivered documents, receipts."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from shipments.models import Shipment, TrackingEvent
from tests.samples import SAMPLES
from tests.warehouses.pipeline.formats import (
    FIXTURES,
    Ingest,
    format_feed,
)
from warehouses.models import (
    CustomsDocument,
    CustomsMatch,
    RejectedRecord,
)
from warehouses.selectors import shipment_customs_documents

pytestmark = pytest.mark.django_db

# --- CEB -------------------------------------------------------------------------------------

CEB = FIXTURES / "ceb"


def test_a_full_ceb_import_chain_for_one_order_ends_released_with_the_three_documents_matched(
    ingest: Ingest,
) -> None:
    platform, payer, carrier, broker = (format_feed("ceb") for _ in range(4))
    ingest(platform, (CEB / "chain_311_order.xml").read_bytes())
    ingest(payer, (CEB / "chain_411_payment.xml").read_bytes())
    assert CustomsMatch.objects.get(order_no="HEK-ORDER-0001").missing == ["waybill"]

    ingest(carrier, (CEB / "chain_511_waybill.xml").read_bytes())
    ingest(broker, (CEB / "chain_621_inventory.xml").read_bytes())
    accepted = ingest(broker, (CEB / "chain_622_receipt_120.xml").read_bytes())
    released = ingest(broker, (CEB / "chain_622_receipt_800.xml").read_bytes())

    assert (accepted.events_created, released.events_created) == (1, 1)
    match = CustomsMatch.objects.get(order_no="HEK-ORDER-0001")
    assert (match.result, match.missing, match.mismatched) == ("matched", [], [])
    shipment = Shipment.objects.get(tracking_number="HEK100000001CN")
    assert match.shipment_id == shipment.pk
    assert (shipment.status, shipment.stage) == ("in_transit", "import_customs")
    assert shipment.status_event is not None
    assert shipment.status_event.code == "customs_import_cleared"
    # The receipt named only its declaration's numbers: resolved through the 621.
    assert shipment.status_event.extra["resolved_by"] == "cop_no"
    assert shipment.status_event.extra["return_info"]
    assert (shipment.order_number, shipment.destination_country) == ("HEK-ORDER-0001", "CN")
    assert shipment.declared_value is not None and shipment.currency == "CNY"
    assert shipment_customs_documents(shipment=shipment) == {
        "order_no": "HEK-ORDER-0001",
        "result": "matched",
        "missing": [],
        "mismatched": [],
    }
    assert set(CustomsDocument.objects.values_list("doc_type", flat=True)) == {
        "order",
        "payment",
        "waybill",
    }


def test_a_redelivered_customs_document_replaces_the_stored_one(ingest: Ingest) -> None:
    feed = format_feed("ceb")
    order = (CEB / "chain_311_order.xml").read_bytes()
    ingest(feed, order)
    ingest(format_feed("ceb"), order)

    assert CustomsDocument.objects.filter(doc_type="order").count() == 1
    assert CustomsMatch.objects.count() == 1


def test_a_payment_that_differs_from_the_order_is_listed_as_refused_for_operators(
    ingest: Ingest, admin_client: Client
) -> None:
    feed = format_feed("ceb")
    ingest(feed, (CEB / "chain_311_order.xml").read_bytes())
    payment = (CEB / "chain_411_payment.xml").read_bytes().replace(b"1329.2", b"1000.00")
    ingest(feed, payment)
    ingest(feed, (CEB / "chain_511_waybill.xml").read_bytes())

    match = CustomsMatch.objects.get(order_no="HEK-ORDER-0001")
    assert (match.result, match.mismatched) == ("mismatch", ["amount"])
    url = reverse("admin:warehouses_customsmatch_changelist")
    refused = admin_client.get(url, {"refused": "yes"})
    assert refused.status_code == 200
    assert "HEK-ORDER-0001" in refused.content.decode()
    assert "HEK-ORDER-0001" not in admin_client.get(url, {"refused": "no"}).content.decode()


def test_a_receipt_whose_declaration_was_never_seen_is_rejected_with_its_references(
    ingest: Ingest,
) -> None:
    run = ingest(format_feed("ceb"), (CEB / "chain_622_receipt_800.xml").read_bytes())

    reject = RejectedRecord.objects.get(run=run)
    assert (reject.line, reject.field) == (3, "logisticsNo")
    assert "invtNo '19042024I000000001'" in reject.reason
    assert "copNo 'HEK-INVT-0001'" in reject.reason
    assert "earlier CEB621" in reject.reason


def test_export_arrival_receipts_resolve_through_the_arrival_reports_cop_no(
    ingest: Ingest,
) -> None:
    feed = format_feed("ceb")
    ingest(feed, (SAMPLES / "ceb/export/CEB507Message.xml").read_bytes())

    receipt = ingest(feed, (SAMPLES / "ceb/export/CEB508Message.xml").read_bytes())

    # One arrival report (copNo Cop20180507001) lists three waybills: its receipt is theirs.
    assert receipt.events_created == 3
    assert set(
        TrackingEvent.objects.filter(run=receipt).values_list(
            "shipment__tracking_number", flat=True
        )
    ) == set(
        TrackingEvent.objects.filter(code="arrived").values_list(
            "shipment__tracking_number", flat=True
        )
    )
