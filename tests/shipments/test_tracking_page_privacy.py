"""The buyers' page names places from their codes only: personal data a warehouse writes into any
text field of an event or of the shipment never reaches the page, in any of its languages."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from shipments.models import DeliveryEstimateStat, Shipment, Shop
from shipments.readers.place_names import place_namer_register, place_of_code
from shipments.recording import EventInput, events_record
from warehouses.normalize.places import code_place

pytestmark = pytest.mark.django_db

START = datetime.fromisoformat("2026-05-01T01:00:00+00:00")

# What a consignee's record holds, in the three languages of the hub's lanes.
PEOPLE = {
    "zh": ("王小明", "北京市朝阳区建国路88号3单元502室", "+86 138 0013 8000"),
    "ru": ("Ольга Иванова", "ул. Ленина, д. 5, кв. 12", "+7 916 123-45-67"),
    "en": ("John Smith", "221B Baker Street, Apt 4", "+1 212 555 0142"),
    "ru-latin": ("Olga Ivanova", "ul. Lenina 5 kv 12", "8 (916) 765-43-21"),
}
SECRETS = [part for person in PEOPLE.values() for part in person] + [
    "SECRET-ORDER-77",
    "RAW-SECRET",
    "Secret Shop",
    "ivanova@example.ru",
]


def _text(i: int) -> str:
    name, address, phone = list(PEOPLE.values())[i % len(PEOPLE)]
    return f"{name}, {address}, {phone}"


def _event(i: int, code: str, location_code: str, country: str, offset: int) -> EventInput:
    return EventInput(
        line=i + 1,
        code=code,
        occurred_at=START + timedelta(days=i),
        utc_offset_minutes=offset,
        tz_source="explicit",
        tracking_number="PII100",
        location_name=_text(i),
        location_code=location_code,
        country=country,
        description=f"Deliver to {_text(i + 1)} ivanova@example.ru",
        order_number="SECRET-ORDER-77",
        carrier=_text(i + 2)[:64],
        transport_mode="air",
        raw=f"RAW-SECRET;{_text(i + 3)}",
        extra={"consignee": _text(i), "phone": PEOPLE["zh"][2], "note": PEOPLE["ru"][1]},
    )


@pytest.fixture
def parcel() -> Shipment:
    events = [
        # Codes of the hub's own LOCODE table (warehouses/locations.py): CNSHA Shanghai, CN.
        _event(0, "warehouse_received", "CNSHA", "CN", 480),
        # IATA airport codes (airportsdata): PEK's city is Beijing, CN; SVO's Moscow, RU.
        _event(1, "departed", "PEK", "CN", 480),
        _event(2, "arrived", "SVO", "RU", 180),
        # A LOCODE reusing its airport's code in the same country: RUKZN, airport KZN (Kazan).
        _event(3, "customs_import_cleared", "RUKZN", "RU", 180),
        # A LOCODE only the UN/LOCODE list knows: RUKHO is Kholmsk.
        _event(4, "in_transit", "RUKHO", "RU", 600),
        # RUMOW is Moscow in the hub's table.
        _event(5, "out_for_delivery", "RUMOW", "RU", 180),
        # No code: the country alone, whatever the place field says.
        _event(6, "delivery_failed", "", "RU", 180),
        # A code the gazetteer does not know (a private dock code): the country alone.
        _event(7, "available_for_pickup", "DOCK7", "RU", 180),
    ]
    events_record(events=events, feed_id=None, run_id=None, warehouse_id=None, source="t")
    shop = Shop.objects.create(name="Secret Shop Ltd", slug="secret-shop")
    Shipment.objects.filter(tracking_number="PII100").update(
        shop=shop,
        order_number="SECRET-ORDER-77",
        carrier=_text(1)[:64],
        origin_country="CN",
        destination_country="RU",
        metadata={"consignee": _text(0), "address": PEOPLE["en"][1], "phone": PEOPLE["ru"][2]},
    )
    DeliveryEstimateStat.objects.create(
        basis="global",
        stage="last_mile",
        samples=12,
        p50_hours=24,
        p80_hours=48,
        p90_hours=72,
    )
    return Shipment.objects.get(tracking_number="PII100")


# The places the page shows, newest first (each language's name of the country, the gazetteer's
# name of the city).
PLACES = {
    "en": [
        "Russia",
        "Russia",
        "Moscow, Russia",
        "Kholmsk, Russia",
        "Kazan, Russia",
        "Moscow, Russia",
        "Beijing, China",
        "Shanghai, China",
    ],
    "ru": [
        "Россия",
        "Россия",
        "Moscow, Россия",
        "Kholmsk, Россия",
        "Kazan, Россия",
        "Moscow, Россия",
        "Beijing, Китай",
        "Shanghai, Китай",
    ],
    "zh-hans": [
        "俄罗斯",
        "俄罗斯",
        "Moscow, 俄罗斯",
        "Kholmsk, 俄罗斯",
        "Kazan, 俄罗斯",
        "Moscow, 俄罗斯",
        "Beijing, 中国",
        "Shanghai, 中国",
    ],
}


@pytest.mark.parametrize("language", ["en", "ru", "zh-hans"])
def test_no_name_address_or_phone_reaches_the_page_only_places_named_from_codes(
    parcel: Shipment, language: str
) -> None:
    client = Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.3.9")
    page = client.get(reverse("track-detail", args=["PII100"]), {"lang": language})
    assert page.status_code == 200
    html = page.content.decode()
    for secret in SECRETS:
        assert secret not in html, secret
    # Phone numbers by their digits too, whatever the spacing.
    digits = "".join(ch for ch in html if ch.isdigit())
    for number in ("8613800138000", "79161234567", "12125550142", "89167654321"):
        assert number not in digits, number
    places = [
        line.split(" · ", 1)[1].removesuffix("</div></li>")
        for line in html.splitlines()
        if '<div class="muted"><time>' in line
    ]
    assert places == PLACES[language]


def test_the_gazetteer_names_the_codes_the_test_expects() -> None:
    # The expected values above, read from the gazetteer's tables directly.
    assert code_place("CNSHA") == ("Shanghai", "CN")
    assert code_place("PEK") == ("Beijing", "CN")
    assert code_place("SVO") == ("Moscow", "RU")
    assert code_place("RUKZN") == ("Kazan", "RU")
    assert code_place("RUKHO") == ("Kholmsk", "RU")
    assert code_place("rumow") == ("Moscow", "RU")
    assert code_place("DOCK7") is None
    assert code_place("") is None


def test_without_a_gazetteer_wired_a_place_is_its_country_alone(
    parcel: Shipment, monkeypatch: Any
) -> None:
    assert place_of_code("RUMOW") == ("Moscow", "RU")
    place_namer_register(None)
    try:
        assert place_of_code("RUMOW") is None
        client = Client(REMOTE_ADDR="10.77.3.9")
        html = client.get(reverse("track-detail", args=["PII100"]), {"lang": "en"}).content
        assert b"Moscow" not in html
        assert b"Kazan" not in html
        assert html.count(b" \xc2\xb7 Russia</div>") == 6
    finally:
        place_namer_register(code_place)
