"""Formats benchmark: parse + normalise throughput per format, and one unit event on a 20,000-parcel
container through the recorder.

    python bench/formats.py [--records 20000] [--parcels 20000]

1. Generates N records of each standard format (X12 214, EDIFACT IFTSTA, EPCIS 2.0 JSON-LD with
   schema validation, CEB621 XML) and times parser + normalizer in-process (no database):
   records per second, best of three.
2. Creates a scratch database `hub_bench_formats` (dropped first) and migrates it.
3. Applies a manifest of P parcels into one container through `records_apply` (the pipeline's
   membership path), then ingests ONE hub-csv event on the container through the real run
   executor and reports its time, the event rows written and the parcels whose status moved.
Prints figures only; never fails on a target.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "hub_bench_formats"


def database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
    return urlunparse(urlparse(base)._replace(path=f"/{name}"))


# --- generated inputs --------------------------------------------------------------------------

ISA = (
    "ISA|00|          |00|          |ZZ|HUBSENDER      |ZZ|HUBRECEIVER    |240305|0930|U|00401|"
    "000000901|0|P|^\n"
)


def x12(n: int) -> bytes:
    lines = [ISA, "GS|QM|HUBSENDER|HUBRECEIVER|20240305|0930|11|X|004010\n"]
    for i in range(n):
        control = f"{i + 1:04d}"[-9:]
        lines += [
            f"ST|214|{control}\n",
            f"B10|PRO-{i}|HEK{i:09d}CN|HBCX\n",
            "LX|1\n",
            f"AT7|X6|NS|||202403{1 + i % 28:02d}|{i % 24:02d}15|UT\n",
            "MS1|SUIFENHE|HL|CN\n",
            f"SE|6|{control}\n",
        ]
    lines += [f"GE|{n}|11\n", "IEA|1|000000901\n"]
    return "".join(lines).encode()


def edifact(n: int) -> bytes:
    parts = ["UNA:+.? '\n", "UNB+UNOC:3+RZD+HUB+240305:1200+ICR1'\n"]
    for i in range(n):
        parts += [
            f"UNH+M{i}+IFTSTA:D:01B:UN'\n",
            f"BGM+23+RPT{i}+9'\n",
            f"CNI+1+HEK{i:09d}CN'\n",
            "STS+1+24'\n",
            f"DTM+334:202403{1 + i % 28:02d}0830:203'\n",
            "LOC+5+CNHEK:139:6:Heihe?+Port'\n",
            f"UNT+7+M{i}'\n",
        ]
    parts.append(f"UNZ+{n}+ICR1'\n")
    return "".join(parts).encode()


def epcis(n: int) -> bytes:
    events = [
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:6f1b0000-0000-4000-8000-{i:012d}",
            "eventTime": f"2024-03-{1 + i % 28:02d}T08:00:00+08:00",
            "eventTimeZoneOffset": "+08:00",
            "epcList": [f"urn:epc:id:sscc:6901234.{i:010d}"],
            "action": "OBSERVE",
            "bizStep": "departing",
            "readPoint": {"id": "https://hub.example.com/locode/CNSFH"},
        }
        for i in range(n)
    ]
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }
    return json.dumps(document, indent=1).encode()


def ceb(n: int) -> bytes:
    template = (
        "<ceb:Inventory><ceb:InventoryHead><ceb:guid>G{i}</ceb:guid><ceb:appType>1</ceb:appType>"
        "<ceb:appTime>20240106080000</ceb:appTime><ceb:appStatus>2</ceb:appStatus>"
        "<ceb:orderNo>ORDER-{i}</ceb:orderNo><ceb:logisticsNo>HEK{i:09d}CN</ceb:logisticsNo>"
        "<ceb:copNo>COP-{i}</ceb:copNo><ceb:ieFlag>I</ceb:ieFlag><ceb:tradeMode>9610"
        "</ceb:tradeMode><ceb:country>344</ceb:country><ceb:currency>142</ceb:currency>"
        "<ceb:grossWeight>2.35</ceb:grossWeight><ceb:netWeight>2.0</ceb:netWeight>"
        "</ceb:InventoryHead><ceb:InventoryList><ceb:gnum>1</ceb:gnum><ceb:gname>蜂蜜</ceb:gname>"
        "</ceb:InventoryList></ceb:Inventory>\n"
    )
    body = "".join(template.format(i=i) for i in range(n))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ceb:CEB621Message guid="B" version="1.0" xmlns:ceb="http://www.chinaport.gov.cn/ceb">\n'
        f"{body}</ceb:CEB621Message>\n"
    ).encode()


GENERATORS: dict[str, Callable[[int], bytes]] = {
    "x12": x12,
    "edifact": edifact,
    "epcis": epcis,
    "ceb": ceb,
}


def parse_and_normalise(fmt: str, payload: bytes, **options: object) -> tuple[int, int, float]:
    """(records, events normalised, seconds) for one pass of parser + normalizer."""
    from shipments.recording import EventInput
    from warehouses.normalize.context import FeedContext
    from warehouses.normalize.events import normalize_event
    from warehouses.parsers import get_parser
    from warehouses.parsers.base import ParseOptions, Record

    ctx = FeedContext(warehouse_timezone="Asia/Shanghai", warehouse_locode="CNHEK")
    base = get_parser(fmt)

    def parser(stream: io.BytesIO, parse_options: ParseOptions) -> object:
        return base(stream, parse_options, **options) if options else base(stream, parse_options)  # type: ignore[call-arg]

    started = time.perf_counter()
    records = events = 0
    for item in parser(io.BytesIO(payload), ParseOptions()):  # type: ignore[attr-defined]
        records += 1
        is_event = isinstance(item, Record) and item.kind == "event"
        if is_event and isinstance(normalize_event(item, ctx), EventInput):  # type: ignore[arg-type]
            events += 1
    return records, events, time.perf_counter() - started


# --- unit event on a big container -------------------------------------------------------------


def unit_event(parcels: int) -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from shipments.models import Shipment, TrackingEvent
    from warehouses.ingest.apply import records_apply
    from warehouses.ingest.runs import feed_run_create, feed_run_execute
    from warehouses.models import Feed, FeedRun, Warehouse
    from warehouses.normalize.context import feed_context
    from warehouses.parsers.base import Record

    warehouse = Warehouse.objects.create(
        code="suifenhe-yard",
        name="Suifenhe rail yard",
        country="CN",
        unlocode="CNSFH",
        timezone="Asia/Shanghai",
    )
    manifests = Feed.objects.create(code="manifests", name="m", warehouse=warehouse)
    rail = Feed.objects.create(code="rail", name="r", warehouse=warehouse)
    members = [
        Record(
            line=n + 2,
            raw="",
            kind="membership",
            unit_id="TGHU8837461",
            unit_kind="container",
            tracking_number=f"HEK{n:09d}CN",
            event_time="2026-05-01 08:00:00",
        )
        for n in range(parcels)
    ]
    run = FeedRun.objects.create(feed=manifests, status=FeedRun.Status.RUNNING)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        records_apply(run=run, records=members, ctx=feed_context(manifests), events=[])
    manifest_seconds = time.perf_counter() - started
    print(
        f"manifest of {parcels} parcels into one container (records_apply): "
        f"{manifest_seconds * 1000:.0f} ms, {len(queries)} queries"
    )

    csv = (
        b"tracking_number,event_code,event_time,time_zone,location_name,location_code,country,"
        b"description,order_number,carrier,transport_mode,unit_id\n"
        b",border_crossed,2026-05-02 06:00:00,,Pogranichny,RUPGS,RU,,,,rail,TGHU8837461\n"
    )
    created = feed_run_create(feed=rail, content=io.BytesIO(csv), enqueue=False)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        done = feed_run_execute(run_id=created.pk)
    seconds = time.perf_counter() - started
    moved = Shipment.objects.filter(status_event__run_id=done.pk).count()
    rows = TrackingEvent.objects.filter(run_id=done.pk).count()
    print(
        f"one unit event on a {parcels}-parcel container (feed_run_execute, whole run): "
        f"{seconds * 1000:.0f} ms, {len(queries)} queries, {rows} event row(s), "
        f"{moved} parcel statuses moved"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--parcels", type=int, default=20_000)
    args = parser.parse_args()

    url = database_url(DB_NAME)
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, check=True
    )
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()

    print(f"parse + normalise, {args.records} records per format (best of 3):")
    for fmt, generate in GENERATORS.items():
        payload = generate(args.records)
        best = min((parse_and_normalise(fmt, payload) for _ in range(3)), key=lambda r: r[2])
        records, events, seconds = best
        print(
            f"  {fmt:8} {records:>7} records ({events} events) in {seconds:6.2f} s "
            f"= {records / seconds:>9,.0f} records/s  ({len(payload) / 1e6:.1f} MB)"
        )
    # The official EPCIS schema is checked per event (jsonschema): most of EPCIS's cost.
    payload = epcis(args.records)
    records, events, seconds = min(
        (parse_and_normalise("epcis", payload, validate=False) for _ in range(3)),
        key=lambda r: r[2],
    )
    print(
        f"  epcis without schema validation: {records / seconds:>9,.0f} records/s ({seconds:.2f} s)"
    )
    unit_event(args.parcels)


if __name__ == "__main__":
    main()
