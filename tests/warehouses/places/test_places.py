"""Issue 13: a local time takes the zone of the event's own place, never the receiving
warehouse's. Every expected instant below was worked out by hand from the input and the zone's
rules (EST = UTC-5 in December, HKT = UTC+8 all year, CST = UTC-6 in January ...)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from warehouses.normalize.context import FeedContext
from warehouses.normalize.events import normalize_event
from warehouses.normalize.places import PlaceRef, country_zone, place_zone
from warehouses.parsers import get_parser
from warehouses.parsers.base import ParseOptions, Record, RecordError

HERE = Path(__file__).parent

# A Los Angeles fulfilment warehouse: the receiving side of every file below.
LOS_ANGELES = FeedContext(
    warehouse_timezone="America/Los_Angeles",
    warehouse_name="Los Angeles fulfilment",
    warehouse_city="Los Angeles",
    warehouse_locode="USLAX",
)


def event(**values: object) -> Record:
    base: dict[str, object] = {"tracking_number": "PN1", "event_code": "arrived"}
    return Record(line=2, raw="raw", **{**base, **values})  # type: ignore[arg-type]


def normalized(record: Record, ctx: FeedContext = LOS_ANGELES) -> tuple[str, str, int]:
    result = normalize_event(record, ctx)
    assert not isinstance(result, RecordError), result
    return result.occurred_at.isoformat(), result.tz_source, result.utc_offset_minutes


def parsed(name: str, fmt: str) -> list[Record]:
    with (HERE / name).open("rb") as stream:
        items = list(get_parser(fmt)(stream, ParseOptions()))
    assert all(isinstance(item, Record) for item in items), items
    return [item for item in items if isinstance(item, Record)]


def test_an_x12_856_from_solon_ohio_on_a_los_angeles_feed_is_in_solons_eastern_time() -> None:
    # BSN 20251215 1424, N1*SF + N4*SOLON*OH*44139: 14:24 EST = 19:24Z (LA's zone gave 22:24Z).
    (record,) = parsed("solon_856.txt", "x12")
    assert normalized(record) == ("2025-12-15T19:24:00+00:00", "city", -300)


def test_an_iftsta_status_at_hong_kong_takes_hong_kong_time_from_its_locode() -> None:
    # DTM+334:202512151424:203 at LOC+5+HKHKG: 14:24 HKT (UTC+8) = 06:24Z.
    (record,) = parsed("hong_kong_iftsta.edi", "edifact")
    assert record.location_code == "HKHKG"
    assert normalized(record) == ("2025-12-15T06:24:00+00:00", "locode", 480)


def test_an_x12_214_position_from_ms1_coordinates_takes_the_zone_there() -> None:
    # MS1 0914726 W / 0431836 N is 91°47'26"W 43°18'36"N, Decorah, Iowa: AT7 09:30 in January is
    # CST (UTC-6) = 15:30Z.
    (record,) = parsed("decorah_214.txt", "x12")
    assert (record.latitude, record.longitude) == (43.31, -91.790556)
    assert normalized(record) == ("2026-01-15T15:30:00+00:00", "coordinates", -360)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # Harbin Taiping airport, UTC+8 all year: 08:00 = 00:00Z.
        (
            {"location_code": "HRB", "event_time": "2026-01-10 08:00"},
            ("2026-01-10T00:00:00+00:00", "airport", 480),
        ),
        # Los Angeles airport in July is PDT (UTC-7): 08:00 = 15:00Z.
        (
            {"location_code": "LAX", "event_time": "2026-07-04 08:00"},
            ("2026-07-04T15:00:00+00:00", "airport", -420),
        ),
        # Solon, Ohio in July is EDT (UTC-4): 12:00 = 16:00Z.
        (
            {"latitude": 41.3866, "longitude": -81.4421, "event_time": "2026-07-01 12:00"},
            ("2026-07-01T16:00:00+00:00", "coordinates", -240),
        ),
        # Poland keeps one zone; January is CET (UTC+1): 10:00 = 09:00Z.
        (
            {"country": "PL", "event_time": "2026-01-15 10:00"},
            ("2026-01-15T09:00:00+00:00", "country", 60),
        ),
        # Blagoveshchensk (RUBQS) is UTC+9: 10:00 = 01:00Z.
        (
            {"location_code": "RUBQS", "event_time": "2026-05-01 10:00"},
            ("2026-05-01T01:00:00+00:00", "locode", 540),
        ),
        # Solon, OH given as a city and state only (X12 N4 leaves out US): EST, 14:24 = 19:24Z.
        (
            {
                "city": "SOLON",
                "state": "OH",
                "location_name": "SOLON, OH",
                "event_time": "2025-12-15 14:24",
            },
            ("2025-12-15T19:24:00+00:00", "city", -300),
        ),
        # El Paso, Texas keeps Mountain time though Texas is mostly Central: MST, 10:00 = 17:00Z.
        (
            {"location_code": "USELP", "event_time": "2026-01-05 10:00"},
            ("2026-01-05T17:00:00+00:00", "locode", -420),
        ),
    ],
    ids=[
        "airport-HRB",
        "airport-LAX",
        "coordinates",
        "single-zone-country",
        "locode",
        "city-state",
        "locode-us-split-state",
    ],
)
def test_a_local_time_takes_the_zone_of_the_place_the_event_names(
    values: dict[str, object], expected: tuple[str, str, int]
) -> None:
    assert normalized(event(**values)) == expected


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"country": "US"}, "zone unknown for US"),
        ({"location_code": "RUZZ9"}, "zone unknown for RUZZ9"),
        ({"city": "NOWHERE CITY", "country": "RU"}, "zone unknown for NOWHERE CITY RU"),
        ({"location_name": "Carrier depot 7"}, "zone unknown for 'Carrier depot 7'"),
        ({"location_code": "GATE-7"}, "zone unknown for 'GATE-7'"),
    ],
    ids=["multi-zone-country", "unknown-locode", "unknown-city", "free-text-name", "private-code"],
)
def test_a_named_place_whose_zone_is_unknown_is_rejected_never_given_the_warehouses(
    values: dict[str, object], reason: str
) -> None:
    result = normalize_event(event(event_time="2026-01-05 10:00", **values), LOS_ANGELES)
    assert isinstance(result, RecordError)
    assert (result.field, result.reason) == ("time_zone", reason)


def test_a_placeless_event_in_the_warehouses_own_feed_takes_its_zone_and_keeps_no_place() -> None:
    result = normalize_event(event(event_time="2026-01-05 10:00"), LOS_ANGELES)
    assert not isinstance(result, RecordError)
    # 10:00 PST (UTC-8) = 18:00Z; the place stays empty (it used to read "Los Angeles / USLAX").
    assert (result.occurred_at.isoformat(), result.tz_source) == (
        "2026-01-05T18:00:00+00:00",
        "warehouse",
    )
    assert (result.location_name, result.location_code, result.country) == ("", "", "")


def test_a_placeless_event_from_a_carrier_row_is_not_at_any_warehouse() -> None:
    carrier = FeedContext(warehouse_timezone="Asia/Shanghai", warehouse_is_site=False)
    result = normalize_event(event(event_time="2026-01-05 10:00"), carrier)
    assert isinstance(result, RecordError) and result.field == "event_time"
    assert result.reason.startswith("no time zone for local time 2026-01-05 10:00")


def test_the_warehouses_zone_applies_at_its_own_locode_even_when_the_gazetteer_lacks_it() -> None:
    # USZZ9 is no LOCODE any list knows and the US has many zones: only being the warehouse's
    # own code places it. 10:00 PST = 18:00Z.
    ctx = FeedContext(warehouse_timezone="America/Los_Angeles", warehouse_locode="USZZ9")
    assert normalized(event(location_code="USZZ9", event_time="2026-01-05 10:00"), ctx) == (
        "2026-01-05T18:00:00+00:00",
        "warehouse",
        -480,
    )


def test_a_free_text_place_naming_the_warehouse_is_the_warehouse() -> None:
    record = event(location_name="Los Angeles fulfilment, dock 4", event_time="2026-01-05 10:00")
    assert normalized(record) == ("2026-01-05T18:00:00+00:00", "warehouse", -480)


def test_a_single_place_feeds_zone_covers_a_place_in_its_country_but_not_abroad() -> None:
    ctx = FeedContext(feed_timezone="Asia/Vladivostok")
    # Russia has many zones; the feed says its events are in Vladivostok (UTC+10): 10:00 = 00:00Z.
    assert normalized(event(country="RU", event_time="2026-01-05 10:00"), ctx) == (
        "2026-01-05T00:00:00+00:00",
        "feed_default",
        600,
    )
    abroad = normalize_event(event(country="US", event_time="2026-01-05 10:00"), ctx)
    assert isinstance(abroad, RecordError) and abroad.reason == "zone unknown for US"


def test_an_explicit_offset_needs_no_place() -> None:
    record = event(event_time=datetime.fromisoformat("2026-01-05T10:00:00-05:00"), country="US")
    assert normalized(record) == ("2026-01-05T15:00:00+00:00", "explicit", -300)


def test_countries_with_one_zone_come_from_the_tz_database() -> None:
    assert (country_zone("DE"), country_zone("HK"), country_zone("CN")) == (
        "Europe/Berlin",
        "Asia/Hong_Kong",
        "Asia/Shanghai",  # one legal time; the tz database's Asia/Urumqi is Xinjiang's informal
    )
    # Several zones (or different offsets since 1990): no single answer.
    assert [country_zone(c) for c in ("US", "RU", "KZ", "AU", "BR")] == [None] * 5


def test_the_gazetteer_never_answers_from_a_neighbour() -> None:
    # A town the US ZIP table does not know in a state of two zones stays unknown.
    assert place_zone(PlaceRef(city="NOT A REAL TOWN", state="TX", country="US")) is None
    # A whole single-zone state is known (Ohio: every ZIP code is Eastern).
    assert place_zone(PlaceRef(city="NOT A REAL TOWN", state="OH", country="US")) == (
        "America/New_York",
        "city",
    )


def test_an_epcis_read_point_given_as_a_geo_uri_reaches_the_gazetteer() -> None:
    from warehouses.parsers.epcis import parse

    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-15T10:00:00+08:00",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": "2026-01-15T10:00:00+08:00",
                    "eventTimeZoneOffset": "+08:00",
                    "epcList": ["urn:epc:id:sgtin:0614141.107346.2018"],
                    "action": "OBSERVE",
                    "bizStep": "departing",
                    "readPoint": {"id": "geo:50.245,127.528"},
                }
            ]
        },
    }
    import io
    import json

    items = list(parse(io.BytesIO(json.dumps(document).encode()), ParseOptions(), validate=False))
    records = [item for item in items if isinstance(item, Record)]
    assert [(r.latitude, r.longitude) for r in records] == [(50.245, 127.528)]
    # Heihe's coordinates: the zone there is China's.
    assert place_zone(PlaceRef(latitude=50.245, longitude=127.528)) == (
        "Asia/Shanghai",
        "coordinates",
    )
