"""Seeds a scenario's database through the project's own services, in a process of its own.

Run by the fault suite as `python -m tests.faults.agent` with the scenario's environment
(DATABASE_URL of its disposable database, DJANGO_SETTINGS_MODULE=config.settings); reads a JSON
spec on stdin and prints one JSON object: the ids and secrets the scenario needs. The suite's
own process never connects Django to the disposable services, so pytest-django's test database
is untouched.

Spec: {"feeds": [{"code", "format", "transport", "source_location"}],
       "shop": {"tracking_numbers": [...], "endpoints": [{"name", "url"}]},
       "backlog": {"feed", "files": [{"prefix", "count"}]}}
("backlog", optional: one run per file on a seeded feed, created and sent to the ingest queue
as the push API does, `count` parcels each in payloads.hub_csv), or, in a seeded database,
      {"record": {"tracking_numbers": [...]}}: a `picked_up` for each, recorded at once with
      the recorder an ingest batch uses (its status change writes the webhook outbox).
Django is set up before the spec is read: started ahead (Hub.agent), it answers at once.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def seed(spec: dict[str, Any]) -> dict[str, Any]:
    from shipments import webhooks
    from shipments.models import Shipment
    from shipments.services import shop_api_key_create, shop_create
    from warehouses.api.tokens import feed_push_token_rotate
    from warehouses.models import Feed, Warehouse

    warehouse = Warehouse.objects.create(
        code="faults", name="Fault suite", country="CN", city="Heihe", timezone="Asia/Shanghai"
    )
    out: dict[str, Any] = {"feeds": {}, "endpoints": {}}
    for item in spec.get("feeds", []):
        feed = Feed.objects.create(
            code=item["code"],
            name=item["code"],
            warehouse=warehouse,
            format=item.get("format", Feed.Format.HUB_CSV),
            transport=item.get("transport", Feed.Transport.PUSH),
            source_location=item.get("source_location", ""),
        )
        out["feeds"][feed.code] = {"id": feed.pk, "token": feed_push_token_rotate(feed=feed)}
    shop_spec = spec.get("shop")
    if shop_spec:
        shop = shop_create(name="Fault shop")
        _, key = shop_api_key_create(shop=shop)
        out["shop"] = {"id": shop.pk, "api_key": key}
        Shipment.objects.bulk_create(
            Shipment(tracking_number=number, shop=shop)
            for number in shop_spec.get("tracking_numbers", [])
        )
        for endpoint in shop_spec.get("endpoints", []):
            created = webhooks.webhook_endpoint_create(
                shop=shop, url=endpoint["url"], event_types=["shipment.status_changed"]
            )
            out["endpoints"][endpoint["name"]] = {"id": created.pk, "secret": created.secret}
    return out


def backlog(spec: dict[str, Any]) -> dict[str, Any]:
    import io

    from tests.faults.payloads import hub_csv, tracking_numbers
    from warehouses.ingest.runs import feed_run_create
    from warehouses.models import Feed, FeedRun

    feed = Feed.objects.get(code=spec["feed"])
    runs = [
        feed_run_create(
            feed=feed,
            content=io.BytesIO(hub_csv(tracking_numbers(item["prefix"], item["count"]))),
            original_name=f"{item['prefix']}.csv",
            source=FeedRun.Source.PUSH,
        ).pk
        for item in spec["files"]
    ]
    return {"runs": runs}


def record(spec: dict[str, Any]) -> dict[str, Any]:
    from datetime import UTC, datetime

    from django.db import transaction

    from shipments.recording import EventInput, events_record

    events = [
        EventInput(
            line=line,
            code="picked_up",
            occurred_at=datetime(2026, 5, 1, 1, 0, tzinfo=UTC),
            utc_offset_minutes=480,
            tz_source="explicit",
            tracking_number=number,
            country="CN",
        )
        for line, number in enumerate(spec["tracking_numbers"], 1)
    ]
    with transaction.atomic():
        result = events_record(
            events=events, feed_id=None, run_id=None, warehouse_id=None, source="faults-agent"
        )
    return {
        "created": result.created,
        "status_changes": result.status_changes,
        "committed_at": time.time(),
    }


def main() -> None:
    import django

    django.setup()
    spec = json.loads(sys.stdin.read())
    if "record" in spec:
        out = record(spec["record"])
    else:
        out = seed(spec)
        if "backlog" in spec:
            out.update(backlog(spec["backlog"]))
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
