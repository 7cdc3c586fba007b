"""Demo data: the border-hub warehouses, their feeds and schedules, a shop, an admin login."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from shipments.models import Shop
from shipments.notifications.services import shop_notification_settings_update
from shipments.services import shop_api_key_create, shop_create
from warehouses.models import Feed, Warehouse
from warehouses.sources.schedules import feed_schedule_set

WAREHOUSES = [
    ("heihe-bonded", "Heihe bonded warehouse", Warehouse.Kind.BONDED, "CN", "Heihe", "CNHEK", "Asia/Shanghai"),
    ("suifenhe-rail", "Suifenhe rail consolidation yard", Warehouse.Kind.RAIL_YARD, "CN", "Suifenhe", "CNSFH", "Asia/Shanghai"),
    ("harbin-air", "Harbin air cargo terminal", Warehouse.Kind.AIR_TERMINAL, "CN", "Harbin", "CNHRB", "Asia/Shanghai"),
    ("la-fulfilment", "Los Angeles fulfilment warehouse", Warehouse.Kind.FULFILMENT, "US", "Ontario, CA", "USONT", "America/Los_Angeles"),
    ("blagoveshchensk-hub", "Blagoveshchensk receiving hub", Warehouse.Kind.FULFILMENT, "RU", "Blagoveshchensk", "RUBQS", "Asia/Yakutsk"),
    ("duisburg-hub", "Duisburg rail terminal", Warehouse.Kind.RAIL_YARD, "DE", "Duisburg", "DEDUI", "Europe/Berlin"),
]  # fmt: skip

FEEDS = [
    # code, warehouse, format, transport, encoding, extra
    ("heihe-inbox", "heihe-bonded", Feed.Format.HUB_CSV, Feed.Transport.DIRECTORY, "utf-8", {}),
    (
        "suifenhe-wms",
        "suifenhe-rail",
        Feed.Format.PARTNER_CSV,
        Feed.Transport.DIRECTORY,
        "gb18030",
        {
            "column_mapping": {
                "tracking_number": "运单号",
                "event_code": "状态",
                "event_time": "操作时间",
                "location_name": "地点",
                "unit_id": "集装箱号",
                "transport_mode": "运输方式",  # optional: the simulator's files leave it out
            },
            "code_mapping": {
                "入库": "warehouse_received",
                "出库": "warehouse_dispatched",
                "装车": "loaded",
                "发车": "departed",
                "过境": "border_crossed",
            },
        },
    ),
    ("harbin-air-json", "harbin-air", Feed.Format.JSON, Feed.Transport.DIRECTORY, "utf-8", {}),
    ("la-upload", "la-fulfilment", Feed.Format.HUB_CSV, Feed.Transport.UPLOAD, "utf-8", {}),
    # The partners `demo_history` also speaks for (docs/demo-history.md): China's customs
    # e-port (CEB messages), the container manifests, and the carriers beyond the border.
    ("heihe-customs", "heihe-bonded", Feed.Format.CEB, Feed.Transport.PUSH, "utf-8", {}),
    ("suifenhe-customs", "suifenhe-rail", Feed.Format.CEB, Feed.Transport.PUSH, "utf-8", {}),
    ("suifenhe-manifest", "suifenhe-rail", Feed.Format.MANIFEST_CSV, Feed.Transport.UPLOAD, "utf-8", {}),
    ("blagoveshchensk-json", "blagoveshchensk-hub", Feed.Format.JSON, Feed.Transport.PUSH, "utf-8", {}),
    ("duisburg-json", "duisburg-hub", Feed.Format.JSON, Feed.Transport.PUSH, "utf-8", {}),
]  # fmt: skip


class Command(BaseCommand):
    help = "Load demo warehouses, feeds (scheduled every minute), a shop and an admin user."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        for code, name, kind, country, city, locode, tz in WAREHOUSES:
            Warehouse.objects.update_or_create(
                code=code,
                defaults={"name": name, "kind": kind, "country": country, "city": city,
                          "unlocode": locode, "timezone": tz},
            )  # fmt: skip
        for code, warehouse, fmt, transport, encoding, extra in FEEDS:
            feed, _ = Feed.objects.update_or_create(
                code=code,
                defaults={
                    "name": code.replace("-", " ").title(),
                    "warehouse": Warehouse.objects.get(code=warehouse),
                    "format": fmt,
                    "transport": transport,
                    "encoding": encoding,
                    **extra,
                },
            )
            if transport == Feed.Transport.DIRECTORY:
                feed_schedule_set(feed=feed, every_seconds=60)
        output: dict[str, str] = {}
        shop = Shop.objects.filter(slug="demo-shop").first()
        if shop is None:
            shop = shop_create(name="Demo Shop", slug="demo-shop")
            _, key = shop_api_key_create(shop=shop, name="demo")
            # Buyer emails on: a parcel registered with a buyer_email shows them in .local/mail/
            # (docs/notifications.md); the history's parcels have no buyer, so stay silent.
            shop_notification_settings_update(shop=shop, enabled=True, brand_color="#0b6e4f")
            output["api_key"] = key
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@example.com", password)
            output["admin_password"] = password
        if options["json"]:
            self.stdout.write(json.dumps(output))
            return
        if "admin_password" in output:
            self.stdout.write(f"admin login: admin / {output['admin_password']}")
        else:
            self.stdout.write("admin login: admin (password printed when it was created)")
        if "api_key" in output:
            self.stdout.write(f"demo shop API key: {output['api_key']}")
