"""Issue 13 end to end: the event's own place decides its zone, and nothing is filled in from the
receiving warehouse (not the event's place, not the shipment's countries). Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipments.models import Shipment, TrackingEvent
from tests.conftest import FeedFactory, WarehouseFactory, hub_csv
from warehouses.models import Feed, FeedRun, Warehouse

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]
HERE = Path(__file__).parent


@pytest.fixture
def los_angeles() -> Warehouse:
    return WarehouseFactory(
        code="la-fulfilment",
        name="Los Angeles fulfilment",
        kind=Warehouse.Kind.FULFILMENT,
        country="US",
        city="Los Angeles",
        unlocode="USLAX",
        timezone="America/Los_Angeles",
    )


def test_a_solon_ship_notice_on_a_los_angeles_feed_is_stored_in_solons_time(
    ingest: Ingest, los_angeles: Warehouse
) -> None:
    feed = FeedFactory(warehouse=los_angeles, format=Feed.Format.X12)
    run = ingest(feed, (HERE / "solon_856.txt").read_bytes())
    assert run.status == FeedRun.Status.SUCCEEDED
    event = TrackingEvent.objects.get(shipment__tracking_number="SOLON1215A")
    # BSN 14:24 on 15 December in Solon, Ohio: EST (UTC-5) = 19:24Z, not LA's 22:24Z.
    assert event.occurred_at.isoformat() == "2025-12-15T19:24:00+00:00"
    assert (event.utc_offset_minutes, event.tz_source) == (-300, "city")
    assert (event.location_name, event.country) == ("SOLON, OH", "US")


def test_a_placeless_delivered_event_keeps_an_empty_place_and_gives_no_country(
    ingest: Ingest, los_angeles: Warehouse
) -> None:
    feed = FeedFactory(warehouse=los_angeles)
    run = ingest(feed, hub_csv("PN900,delivered,2026-01-05 10:00:00,,,,,,,,,"))
    assert run.status == FeedRun.Status.SUCCEEDED
    event = TrackingEvent.objects.get(shipment__tracking_number="PN900")
    # No place given: none invented (it used to read "Los Angeles / USLAX / US").
    assert (event.location_name, event.location_code, event.country) == ("", "", "")
    # An event of the warehouse's own feed: 10:00 PST = 18:00Z.
    assert (event.occurred_at.isoformat(), event.tz_source) == (
        "2026-01-05T18:00:00+00:00",
        "warehouse",
    )
    shipment = Shipment.objects.get(tracking_number="PN900")
    assert (shipment.origin_country, shipment.destination_country) == ("", "")


def test_a_delivered_event_that_names_its_country_sets_the_destination(
    ingest: Ingest, los_angeles: Warehouse
) -> None:
    feed = FeedFactory(warehouse=los_angeles)
    ingest(feed, hub_csv("PN901,delivered,2026-01-05T10:00:00+01:00,,Warsaw,PLWAW,PL,,,,,"))
    assert Shipment.objects.get(tracking_number="PN901").destination_country == "PL"


def test_the_admin_shows_a_placeless_event_as_not_given(
    ingest: Ingest, los_angeles: Warehouse
) -> None:
    from django.contrib import admin

    from shipments.admin import EventInline

    feed = FeedFactory(warehouse=los_angeles)
    ingest(
        feed,
        hub_csv(
            "PN902,departed,2026-01-05 10:00:00,,,,,,,,,",
            "PN902,arrived,2026-01-06T10:00:00+01:00,,Warsaw,PLWAW,PL,,,,,",
        ),
    )
    inline = EventInline(Shipment, admin.site)
    places = {
        e.code: inline.place(e)
        for e in TrackingEvent.objects.filter(shipment__tracking_number="PN902")
    }
    assert places == {"departed": "— (not given)", "arrived": "Warsaw · PLWAW · PL"}
