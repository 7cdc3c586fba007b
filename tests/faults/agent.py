"""Seeds a scenario's database through the project's own services, in a process of its own.

Run by the fault suite as `python -m tests.faults.agent` with the scenario's environment
(DATABASE_URL of its disposable database, DJANGO_SETTINGS_MODULE=config.settings); reads a JSON
spec on stdin and prints one JSON object: the ids and secrets the scenario needs. The suite's
own process never connects Django to the disposable services, so pytest-django's test database
is untouched.

Spec: {"feeds": [{"code", "format", "transport", "source_location"}],
       "shop": {"tracking_numbers": [...], "endpoints": [{"name", "url"}]}}
"""

from __future__ import annotations

import json
import sys
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


def main() -> None:
    import django

    django.setup()
    spec = json.loads(sys.stdin.read())
    sys.stdout.write(json.dumps(seed(spec)) + "\n")


if __name__ == "__main__":
    main()
