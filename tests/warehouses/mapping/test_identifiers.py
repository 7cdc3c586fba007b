"""Identifiers keep their case where their standard says so (issue 13, docs/identifiers.md):
EPC URIs and GS1 Digital Link URIs are stored and looked up exactly; carriers' tracking numbers
are still cleaned (spaces out, upper case) and found in any case."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from shipments.identifiers import tracking_number_clean, tracking_number_valid
from shipments.models import Shipment
from shipments.services import shop_api_key_create
from tests.conftest import FeedFactory, ShopFactory, hub_csv
from tests.warehouses.mapping.conftest import epcis, object_event
from warehouses.models import FeedRun, RejectedRecord

Ingest = Callable[..., FeedRun]

GIAI_LOWER = "urn:epc:id:giai:952005385.w2"
GIAI_UPPER = "urn:epc:id:giai:952005385.W2"
LINK = "https://id.gs1.org/01/09520123456788/21/aBc12"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (GIAI_LOWER, GIAI_LOWER),
        (GIAI_UPPER, GIAI_UPPER),
        # The fixed lower-case words of the EPC URI are case-insensitive; the serial is not.
        ("URN:EPC:ID:GIAI:952005385.w2", GIAI_LOWER),
        (" urn:epc:id:sgtin:0614141.112345.Ab1 ", "urn:epc:id:sgtin:0614141.112345.Ab1"),
        # Digital Link: scheme and host are case-insensitive (RFC 3986), the path is not.
        ("HTTPS://ID.GS1.ORG/01/09520123456788/21/aBc12", LINK),
        ("urn:uuid:6F1B0000-aaaa", "urn:uuid:6F1B0000-aaaa"),
        # Carriers' numbers: spaces out, upper case, as always.
        ("hek 0001 cn", "HEK0001CN"),
        ("1z999aa10123456784", "1Z999AA10123456784"),
    ],
)
def test_identifiers_are_cleaned_by_their_kind(given: str, stored: str) -> None:
    assert tracking_number_clean(given) == stored
    assert tracking_number_valid(stored)


def test_an_identifier_longer_than_a_tracking_number_is_invalid() -> None:
    assert not tracking_number_valid("urn:epc:id:giai:952005385." + "x" * 60)
    assert not tracking_number_valid("urn:epc:id:giai:952005385.a b")


@pytest.mark.django_db
def test_two_giai_serials_that_differ_only_in_case_are_two_shipments(ingest: Ingest) -> None:
    document = epcis(
        object_event(GIAI_LOWER, bizStep="shipping"),
        object_event(GIAI_UPPER, bizStep="shipping"),
        object_event(LINK, bizStep="shipping"),
    )

    run = ingest(FeedFactory(format="epcis"), document)

    assert run.status == FeedRun.Status.SUCCEEDED, list(RejectedRecord.objects.values("reason"))
    assert sorted(Shipment.objects.values_list("tracking_number", flat=True)) == sorted(
        [GIAI_LOWER, GIAI_UPPER, LINK]
    )


@pytest.mark.django_db
def test_csv_tracking_numbers_are_still_upper_cased(ingest: Ingest) -> None:
    run = ingest(
        FeedFactory(),
        hub_csv("hek0001cn,departed,2026-05-01T10:00:00+08:00,,Heihe,CNHEK,CN,,,,,"),
    )

    assert run.status == FeedRun.Status.SUCCEEDED
    assert list(Shipment.objects.values_list("tracking_number", flat=True)) == ["HEK0001CN"]


@pytest.mark.django_db
def test_the_api_finds_an_epc_shipment_by_its_exact_identifier_and_a_csv_one_in_any_case(
    ingest: Ingest,
) -> None:
    shop = ShopFactory()
    _, key = shop_api_key_create(shop=shop)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    for number in (GIAI_LOWER, LINK, "HEK0001CN"):
        answer = api.post(reverse("api-shipments"), {"tracking_number": number}, format="json")
        assert answer.status_code == 201, answer.content
    ingest(
        FeedFactory(format="epcis"),
        epcis(
            object_event(GIAI_LOWER, bizStep="departing"), object_event(LINK, bizStep="departing")
        ),
    )

    found = api.get(reverse("api-shipment", args=[GIAI_LOWER]))
    assert found.status_code == 200, found.content
    assert found.json()["tracking_number"] == GIAI_LOWER
    assert found.json()["status"] == "in_transit"
    linked = api.get(reverse("api-shipment", args=[LINK]))
    assert linked.status_code == 200, linked.content
    assert linked.json()["tracking_number"] == LINK
    # Another asset: the serial differs in case.
    assert api.get(reverse("api-shipment", args=[GIAI_UPPER])).status_code == 404
    assert api.get(reverse("api-shipment", args=["hek0001cn"])).status_code == 200


@pytest.mark.django_db
def test_the_tracking_page_finds_an_epc_and_a_digital_link_by_their_exact_identifier(
    ingest: Ingest,
) -> None:
    ingest(
        FeedFactory(format="epcis"),
        epcis(
            object_event(GIAI_LOWER, bizStep="departing"), object_event(LINK, bizStep="departing")
        ),
    )
    client = Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9")

    assert client.get(reverse("track-detail", args=[GIAI_LOWER])).status_code == 200
    assert client.get(reverse("track-detail", args=[LINK])).status_code == 200
    assert client.get(reverse("track-detail", args=[GIAI_UPPER])).status_code == 404
    searched = client.get(reverse("track-search"), {"tracking_number": LINK})
    assert searched.status_code == 302
    assert client.get(searched["Location"]).status_code == 200
