"""The buyers' tracking page: what it shows (and never shows), languages, misses, rate limit,
and a constant number of queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shipments.models import DeliveryEstimateStat, Shipment, Shop, TransportUnit, UnitMembership
from shipments.recording import EventInput, events_record

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def client() -> Client:
    # Each test its own client address: the rate limit counts per IP in the shared Redis.
    return Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7")


def ev(tn: str, code: str, at: datetime, **kw: Any) -> EventInput:
    base: dict[str, Any] = {
        "line": 1,
        "code": code,
        "occurred_at": at,
        "utc_offset_minutes": 480,
        "tz_source": "explicit",
        "tracking_number": tn,
        "country": "CN",
        "location_name": "Heihe",
        "location_code": "CNHEK",
        "transport_mode": "rail",
    }
    base.update(kw)
    return EventInput(**base)


def record(*events: EventInput) -> None:
    events_record(events=list(events), feed_id=None, run_id=None, warehouse_id=None, source="t")


def detail_url(tn: str) -> str:
    return reverse("track-detail", args=[tn])


@pytest.fixture
def parcel() -> Shipment:
    """A parcel in line haul with personal data on its record that must never be shown."""
    shop = Shop.objects.create(name="Secret Shop Ltd", slug="secret-shop")
    DeliveryEstimateStat.objects.create(
        basis="global", stage="line_haul", samples=250, p50_hours=96, p80_hours=144, p90_hours=200
    )
    record(
        ev(
            "HB100",
            "warehouse_received",
            datetime.fromisoformat("2026-05-01T01:00:00+00:00"),
            order_number="ORDER-SECRET-9",
            description="Consignee Ivan Petrov, ul. Lenina 5",
            raw="RAW-LINE-SECRET",
        ),
        ev(
            "HB100",
            "departed",
            NOW - timedelta(hours=3),
            location_name="Suifenhe",
            location_code="CNSFH",
        ),
    )
    Shipment.objects.filter(tracking_number="HB100").update(shop=shop, destination_country="RU")
    return Shipment.objects.get(tracking_number="HB100")


def test_the_search_page_shows_a_form_and_redirects_to_the_cleaned_number(client: Client) -> None:
    page = client.get(reverse("track-search"))
    assert page.status_code == 200
    assert b'name="tracking_number"' in page.content
    assert b'name="viewport"' in page.content
    moved = client.get(reverse("track-search"), {"tracking_number": " hb 100 "})
    assert moved.status_code == 302
    assert moved["Location"] == detail_url("HB100")


def test_the_page_shows_status_stage_estimate_and_local_times_without_personal_data(
    client: Client, parcel: Shipment
) -> None:
    page = client.get(detail_url("hb100"), HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-status="in_transit"' in html
    assert 'class="stage current" data-stage="line_haul" aria-current="step"' in html
    assert 'class="stage done" data-stage="first_mile"' in html
    assert 'class="stage todo" data-stage="last_mile"' in html
    assert "High confidence" in html
    assert "based on 250 deliveries on all routes" in html
    # 01:00 UTC at UTC+8 is 09:00 where it happened.
    assert "May 1, 2026, 9 a.m." in html
    assert "UTC+08:00" in html
    assert "Received at the warehouse" in html
    assert "Heihe, China" in html
    for secret in ("ORDER-SECRET-9", "Ivan", "Lenina", "RAW-LINE-SECRET", "Secret Shop"):
        assert secret not in html


def test_a_last_mile_place_without_a_locode_is_reduced_to_its_country(client: Client) -> None:
    record(
        ev(
            "HB200",
            "out_for_delivery",
            NOW,
            country="RU",
            location_name="ul. Tverskaya 7, apt 12",
            location_code="",
            utc_offset_minutes=180,
        )
    )
    html = client.get(detail_url("HB200"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Tverskaya" not in html
    assert "Russia" in html
    assert 'class="stage current" data-stage="last_mile"' in html


def test_events_on_the_parcels_transport_unit_are_on_its_timeline(client: Client) -> None:
    record(ev("HB300", "warehouse_received", NOW - timedelta(days=2)))
    unit = TransportUnit.objects.create(number="TRAIN-1", kind="train")
    UnitMembership.objects.create(
        unit=unit,
        shipment=Shipment.objects.get(tracking_number="HB300"),
        loaded_at=NOW - timedelta(days=1),
    )
    record(
        ev(
            "",
            "border_crossed",
            NOW - timedelta(hours=5),
            unit_number="TRAIN-1",
            country="RU",
            location_name="Pogranichny",
            location_code="RUPGS",
        )
    )
    html = client.get(detail_url("HB300"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Crossed the border" in html
    assert "Pogranichny, Russia" in html
    assert 'class="stage current" data-stage="line_haul"' in html


def test_accept_language_chooses_chinese(client: Client, parcel: Shipment) -> None:
    html = client.get(detail_url("HB100"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "干线运输" in html  # line haul
    assert "运输中" in html  # in transit
    assert "仓库已收货" in html  # received at the warehouse
    assert "可信度高" in html
    assert "2026年5月1日" in html


def test_the_switcher_sets_russian_and_remembers_it(client: Client, parcel: Shipment) -> None:
    page = client.get(detail_url("HB100") + "?lang=ru", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert "Магистральная перевозка" in html
    assert "В пути" in html
    assert "на основе 250 доставок по всем маршрутам" in html
    assert page.cookies[django_settings.LANGUAGE_COOKIE_NAME].value == "ru"
    again = client.get(detail_url("HB100"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ru">' in again


def test_an_unknown_number_gets_a_friendly_404_in_the_buyers_language(client: Client) -> None:
    page = client.get(detail_url("NOPE123"), HTTP_ACCEPT_LANGUAGE="ru")
    assert page.status_code == 404
    html = page.content.decode()
    assert "Посылка не найдена" in html
    assert "NOPE123" in html
    assert 'name="tracking_number"' in html


def test_a_parcel_without_events_says_it_waits_for_its_first_scan(client: Client) -> None:
    Shipment.objects.create(tracking_number="HB400")
    html = client.get(detail_url("HB400"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "waiting for its first scan" in html
    assert 'aria-current="step"' not in html
    assert "No estimate yet" in html


def test_lookups_over_the_limit_get_a_friendly_429_and_misses_count_more(
    client: Client, parcel: Shipment, settings: Any
) -> None:
    settings.TRACK_RATE_PER_MINUTE = 12
    settings.TRACK_UNKNOWN_COST = 5
    assert client.get(detail_url("HB100")).status_code == 200  # 1
    assert client.get(detail_url("GUESS1")).status_code == 404  # 6
    assert client.get(detail_url("GUESS2")).status_code == 404  # 11
    limited = client.get(detail_url("HB100"), HTTP_ACCEPT_LANGUAGE="en")  # 12: still allowed
    assert limited.status_code == 200
    limited = client.get(detail_url("HB100"), HTTP_ACCEPT_LANGUAGE="en")
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "Too many lookups" in limited.content.decode()
    # Another client is not affected.
    other = Client(REMOTE_ADDR="10.251.0.1")
    assert other.get(detail_url("HB100")).status_code == 200


def _random_public_ipv4() -> str:
    n = uuid.uuid4().int
    return f"198.51.{n % 250}.{(n >> 8) % 250 + 1}"


def test_behind_a_trusted_proxy_each_buyer_has_a_bucket_of_their_own(
    parcel: Shipment, settings: Any
) -> None:
    settings.TRACK_RATE_PER_MINUTE = 2
    settings.TRUSTED_PROXIES = ["10.250.0.0/16"]
    proxy = Client(REMOTE_ADDR="10.250.0.1")
    buyer, other = _random_public_ipv4(), _random_public_ipv4()
    assert proxy.get(detail_url("HB100"), HTTP_X_FORWARDED_FOR=buyer).status_code == 200
    assert proxy.get(detail_url("HB100"), HTTP_X_FORWARDED_FOR=buyer).status_code == 200
    assert proxy.get(detail_url("HB100"), HTTP_X_FORWARDED_FOR=buyer).status_code == 429
    # Another buyer behind the same proxy is not affected.
    assert proxy.get(detail_url("HB100"), HTTP_X_FORWARDED_FOR=other).status_code == 200
    # A buyer cannot pick a fresh key by prepending addresses to the header: our proxy appends
    # the real one, and only that one is believed.
    spoofed = f"{_random_public_ipv4()}, {buyer}"
    assert proxy.get(detail_url("HB100"), HTTP_X_FORWARDED_FOR=spoofed).status_code == 429


def test_a_client_not_behind_a_trusted_proxy_cannot_choose_its_key(
    client: Client, parcel: Shipment, settings: Any
) -> None:
    settings.TRACK_RATE_PER_MINUTE = 2
    settings.TRUSTED_PROXIES = ["10.250.0.0/16"]
    for expected in (200, 200, 429):
        response = client.get(detail_url("HB100"), HTTP_X_FORWARDED_FOR=_random_public_ipv4())
        assert response.status_code == expected


def test_ipv6_buyers_are_counted_per_64(parcel: Shipment, settings: Any) -> None:
    settings.TRACK_RATE_PER_MINUTE = 2
    settings.TRUSTED_PROXIES = []
    prefix = f"2001:db8:{uuid.uuid4().int % 65536:x}:{uuid.uuid4().int % 65536:x}"
    for host, expected in (("::1", 200), ("::2", 200), ("::3", 429)):
        response = Client(REMOTE_ADDR=f"{prefix}{host}").get(detail_url("HB100"))
        assert response.status_code == expected
    neighbour = Client(REMOTE_ADDR=f"2001:db8:ffff:{uuid.uuid4().int % 65536:x}::1")
    assert neighbour.get(detail_url("HB100")).status_code == 200


@pytest.mark.parametrize("events", [1, 40])
def test_the_page_costs_the_same_number_of_queries_whatever_the_number_of_events(
    client: Client, events: int, django_assert_num_queries: Callable[..., Any]
) -> None:
    record(*[ev("HB500", "in_transit", NOW - timedelta(hours=i)) for i in range(events)])
    # shipment with its estimate, the unified timeline
    with django_assert_num_queries(2):
        page = client.get(detail_url("HB500"))
    assert page.status_code == 200
    assert page.content.decode().count('class="what"') == events


def test_a_miss_costs_one_query(
    client: Client, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(1):
        assert client.get(detail_url("NOPE")).status_code == 404


def test_head_answers_like_get_without_a_body_and_other_methods_are_refused(
    client: Client, parcel: Shipment
) -> None:
    assert client.head(reverse("track-search")).status_code == 200
    head = client.head(detail_url("HB100"))
    assert head.status_code == 200
    assert head["Content-Type"].startswith("text/html")
    assert client.head(detail_url("NOPE123")).status_code == 404
    assert client.post(detail_url("HB100")).status_code == 405
