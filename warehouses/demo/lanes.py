"""The demo's three lanes as timelines: what happens to each parcel and container, and when.

Pure and deterministic (one `random.Random`): no database, no payloads. Each lane turns an order
into `Row`s, one per line some feed will send: the feed's code, when it happened, when the feed
reports it, and the fields its format needs (`payloads` renders them). Durations between steps
are log-normal around a median (`Clock.after`), so stage times have a realistic long tail;
docs/demo-history.md lists the medians and spreads.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Reporting delays: most lines reach the hub within hours, some a day late, a few days late.
_LATE = ((0.85, 1.0, 0.8), (0.12, 14.0, 0.5), (0.03, 60.0, 0.3))
# Rail: a block train leaves Suifenhe every third day at 10:00 China time.
TRAIN_EVERY_DAYS = 3
_TRAIN_HOUR_UTC = 2


@dataclass(slots=True)
class Row:
    """One line of one feed: `at` happened, `reported` is when the feed delivers it."""

    feed: str
    kind: str  # event | load | unload | order | payment | waybill | inventory | receipt
    at: datetime
    reported: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Clock:
    """A parcel's (or container's) running time; `after` moves it by a log-normal step."""

    rng: random.Random
    now: datetime

    def after(self, median_hours: float, spread: float = 0.5) -> datetime:
        hours = median_hours * math.exp(self.rng.gauss(0.0, spread))
        self.now += timedelta(hours=hours)
        return self.now


def reported_at(rng: random.Random, at: datetime) -> datetime:
    pick = rng.random()
    for share, median, spread in _LATE:
        if pick < share:
            return at + timedelta(hours=median * math.exp(rng.gauss(0.0, spread)))
        pick -= share
    return at + timedelta(hours=1)


@dataclass(slots=True)
class Parcel:
    """An order on a lane: its numbers, its value, and the rows it produced."""

    rng: random.Random
    tracking: str
    order: str
    rows: list[Row] = field(default_factory=list)

    def emit(self, feed: str, kind: str, at: datetime, **fields: Any) -> None:
        fields.setdefault("tracking_number", self.tracking)
        self.rows.append(Row(feed, kind, at, reported_at(self.rng, at), fields))


def _documents(parcel: Parcel, feed: str, at: datetime, consignee: str, country: str) -> None:
    """CEB order, payment and waybill: 2 % lack the payment, 1 % pay a different amount."""
    rng = parcel.rng
    value = round(rng.lognormvariate(math.log(180.0), 0.6), 2)
    freight = round(rng.uniform(8.0, 40.0), 2)
    fields = {"order_no": parcel.order, "consignee": consignee}
    parcel.emit(feed, "order", at, goods_value=value, freight=freight, **fields)
    pick = rng.random()
    if pick >= 0.02:
        paid = round(value + freight + (5.0 if pick < 0.03 else 0.0), 2)
        parcel.emit(feed, "payment", at + timedelta(minutes=7), charge=paid, **fields)
    weight = round(rng.lognormvariate(math.log(1.2), 0.5), 2)
    waybill_at = at + timedelta(minutes=20)
    parcel.emit(feed, "waybill", waybill_at, weight=weight, country=country, **fields)


def _export_customs(parcel: Parcel, feed: str, clock: Clock, country: str) -> bool:
    """Inventory declared, then released (800); 4 % inspected first (500), a quarter of those
    held still. Returns False when the parcel stays held."""
    rng = parcel.rng
    order = parcel.order
    parcel.emit(feed, "inventory", clock.after(3.0, 0.5), order_no=order, country=country)
    if rng.random() < 0.04:
        parcel.emit(feed, "receipt", clock.after(4.0, 0.5), status="500", order_no=order)
        if rng.random() < 0.25:
            return False
        clock.after(30.0, 0.5)
    parcel.emit(feed, "receipt", clock.after(6.0, 0.8), status="800", order_no=order)
    return True


def _last_mile(parcel: Parcel, feed: str, clock: Clock, place: dict[str, str]) -> None:
    """Out for delivery, 8 % a failed attempt first (a quarter of those not retried yet)."""
    parcel.emit(feed, "event", clock.after(20.0, 0.5), event_code="out_for_delivery", **place)
    if parcel.rng.random() < 0.08:
        parcel.emit(feed, "event", clock.after(6.0, 0.4), event_code="delivery_failed", **place)
        if parcel.rng.random() < 0.25:
            return
        parcel.emit(feed, "event", clock.after(20.0, 0.3), event_code="out_for_delivery", **place)
    parcel.emit(feed, "event", clock.after(5.0, 0.5), event_code="delivered", **place)


HEIHE = {"location_code": "CNHEK", "location_name": "Heihe bonded warehouse", "country": "CN"}
BLAGOVESHCHENSK = {"location_code": "RUBQS", "location_name": "Blagoveshchensk", "country": "RU"}
MOSCOW = {"location_code": "RUMOW", "location_name": "Moscow", "country": "RU"}


def heihe_moscow(parcel: Parcel, start: datetime) -> None:
    """Heihe bonded -> Amur bridge by road -> Blagoveshchensk -> Moscow by rail (CN -> RU)."""
    clock = Clock(parcel.rng, start)
    road = {**HEIHE, "transport_mode": "road", "order_number": parcel.order}
    _documents(parcel, "heihe-customs", clock.after(0.2, 0.3), "Ivanov Ivan", "RU")
    for code, hours in (("info_received", 0.5), ("warehouse_received", 18.0)):
        parcel.emit("heihe-inbox", "event", clock.after(hours, 0.6), event_code=code, **road)
    if not _export_customs(parcel, "heihe-customs", clock, "RU"):
        return
    for code, hours in (("warehouse_dispatched", 8.0), ("departed", 2.0)):
        parcel.emit("heihe-inbox", "event", clock.after(hours, 0.6), event_code=code, **road)
    # Across the Amur by road, then by rail under customs transit to a Moscow customs post:
    # the import declaration is cleared there, not at the border.
    feed = "blagoveshchensk-json"
    rail = {**BLAGOVESHCHENSK, "transport_mode": "rail"}
    parcel.emit(feed, "event", clock.after(3.0, 0.4), event_code="border_crossed", **rail)
    parcel.emit(feed, "event", clock.after(20.0, 0.5), event_code="departed", **rail)
    parcel.emit(feed, "event", clock.after(150.0, 0.25), event_code="arrived", **MOSCOW)
    for code, hours, spread in (
        ("customs_import_submitted", 4.0, 0.4),
        ("customs_import_cleared", 20.0, 0.6),
    ):
        parcel.emit(feed, "event", clock.after(hours, spread), event_code=code, **MOSCOW)
    _last_mile(parcel, feed, clock, MOSCOW)


HARBIN = {"location_code": "CNHRB", "country": "CN"}
LOS_ANGELES = {"location_code": "USLAX", "country": "US"}
ONTARIO = {
    "location_code": "USONT",
    "location_name": "Los Angeles fulfilment warehouse",
    "country": "US",
}


def harbin_los_angeles(parcel: Parcel, start: datetime) -> None:
    """Harbin air cargo terminal -> LAX -> the Ontario, CA fulfilment warehouse (CN -> US)."""
    clock = Clock(parcel.rng, start)
    air = {**HARBIN, "transport_mode": "air", "order_number": parcel.order}
    feed = "harbin-air-json"
    for code, hours, spread in (
        ("info_received", 0.5, 0.3),
        ("warehouse_received", 14.0, 0.6),
        ("customs_export_cleared", 10.0, 0.6),
        ("departed", 12.0, 0.7),
    ):
        parcel.emit(feed, "event", clock.after(hours, spread), event_code=code, **air)
    parcel.emit(feed, "event", clock.after(16.0, 0.2), event_code="arrived", **LOS_ANGELES)
    if parcel.rng.random() < 0.03:
        parcel.emit(feed, "event", clock.after(6.0, 0.5), event_code="customs_held", **LOS_ANGELES)
        if parcel.rng.random() < 0.3:
            return
        clock.after(48.0, 0.4)
    cleared = clock.after(20.0, 0.8)
    parcel.emit(feed, "event", cleared, event_code="customs_import_cleared", **LOS_ANGELES)
    clock.after(20.0, 0.6)  # trucked to the Ontario warehouse, sorted for delivery
    _last_mile(parcel, "la-upload", clock, ONTARIO)


# Suifenhe's WMS reports in its own codes (demo_seed maps them) and names places in words.
SUIFENHE = {"location_name": "Suifenhe", "transport_mode": "rail"}
EUROPE = (
    {"location_code": "DEDUI", "country": "DE"},
    {"location_code": "DEHAM", "country": "DE"},
    {"location_code": "PLWAW", "country": "PL"},
)
DUISBURG = EUROPE[0]


@dataclass(slots=True)
class Train:
    """A block train's container: its number and its own timeline, shared by its parcels."""

    number: str
    loaded: datetime
    departed: datetime
    border: datetime
    arrived: datetime
    unloaded: datetime
    rows: list[Row] = field(default_factory=list)


def next_train(after: datetime) -> datetime:
    """The first departure at or after `after` (every TRAIN_EVERY_DAYS days, epoch-aligned)."""
    day = after.replace(hour=_TRAIN_HOUR_UTC, minute=0, second=0, microsecond=0)
    if day < after:
        day += timedelta(days=1)
    while (day - datetime(1970, 1, 1, tzinfo=UTC)).days % TRAIN_EVERY_DAYS:
        day += timedelta(days=1)
    return day


def train_make(rng: random.Random, departs: datetime) -> Train:
    """The container on the train leaving at `departs`, and its own events (unit rows)."""
    number = f"TKRU{departs:%y%m%d}{rng.randrange(10)}"
    clock = Clock(rng, departs)
    border = clock.after(260.0, 0.12)  # Małaszewicze, after the Trans-Siberian and Belarus
    arrived = clock.after(40.0, 0.3)
    unloaded = clock.after(6.0, 0.4)
    train = Train(number, departs - timedelta(hours=8), departs, border, arrived, unloaded)
    unit = {"unit_id": number, "tracking_number": ""}
    wms = "suifenhe-wms"
    for code, at in (("装车", train.loaded), ("发车", departs)):
        row = {**unit, **SUIFENHE, "event_code": code}
        train.rows.append(Row(wms, "event", at, reported_at(rng, at), row))
    europe = {**unit, "unit_kind": "container", "transport_mode": "rail"}
    for code, at, place in (
        ("border_crossed", border, {"location_code": "PLMAL", "country": "PL"}),
        ("arrived", arrived, DUISBURG),
        ("unloaded", unloaded, DUISBURG),
    ):
        row = {**europe, **place, "event_code": code}
        train.rows.append(Row("duisburg-json", "event", at, reported_at(rng, at), row))
    return train


def suifenhe_europe(parcel: Parcel, start: datetime, trains: dict[datetime, Train]) -> None:
    """Suifenhe yard -> block train in a container -> Małaszewicze -> Duisburg (CN -> DE/PL)."""
    clock = Clock(parcel.rng, start)
    destination = parcel.rng.choice(EUROPE)
    country = destination["country"]
    _documents(parcel, "suifenhe-customs", clock.after(0.2, 0.3), "Anna Schmidt", country)
    received = clock.after(30.0, 0.5)
    parcel.emit("suifenhe-wms", "event", received, event_code="入库", **SUIFENHE)
    if not _export_customs(parcel, "suifenhe-customs", clock, country):
        return
    departs = next_train(max(clock.now, received + timedelta(hours=12)) + timedelta(hours=8))
    train = trains.get(departs)
    if train is None:
        train = trains[departs] = train_make(parcel.rng, departs)
    parcel.emit("suifenhe-wms", "event", train.loaded, event_code="出库", **SUIFENHE)
    load = {"unit_id": train.number, "loaded_at": train.loaded}
    parcel.emit("suifenhe-manifest", "load", train.loaded, **load)
    parcel.emit("suifenhe-manifest", "unload", train.unloaded, unloaded_at=train.unloaded, **load)
    clock.now = train.unloaded
    rail = {**DUISBURG, "transport_mode": "rail", "order_number": parcel.order}
    feed = "duisburg-json"
    cleared = clock.after(20.0, 0.6)
    parcel.emit(feed, "event", cleared, event_code="customs_import_cleared", **rail)
    _last_mile(parcel, feed, clock, destination)
