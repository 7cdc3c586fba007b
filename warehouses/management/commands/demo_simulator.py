"""Drops fresh feed files into the demo inboxes every minute so scheduled ingestion is visible.

Parcels move Heihe bonded warehouse -> Suifenhe rail yard -> border -> Blagoveshchensk, and
Harbin air -> Los Angeles; each tick advances some parcels one step and starts new ones.
Files are written under a dot-name and renamed, so a scan never sees half a file.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand

from shipments.models import Shop
from shipments.services import shipment_register
from warehouses.models import Feed
from warehouses.sources.inbox import inbox_path

RAIL_STEPS = [
    "info_received",
    "warehouse_received",
    "warehouse_dispatched",
    "入库",
    "装车",
    "发车",
    "过境",
]
AIR_STEPS = ["info_received", "warehouse_received", "customs_export_cleared", "departed", "arrived", "customs_import_cleared", "out_for_delivery", "delivered"]  # fmt: skip
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Command(BaseCommand):
    help = "Write demo feed files into the inboxes every --every seconds (Ctrl-C to stop)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--every", type=float, default=60.0)
        parser.add_argument("--ticks", type=int, default=0, help="stop after N ticks (0: never)")
        parser.add_argument("--seed", type=int, default=None, help="repeatable parcels (tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(options["seed"])
        parcels: dict[str, int] = {}
        tick = 0
        while True:
            tick += 1
            self._tick(rng, parcels, tick)
            if options["ticks"] and tick >= options["ticks"]:
                return
            time.sleep(options["every"])

    def _write(self, feed_code: str, name: str, data: bytes) -> None:
        feed = Feed.objects.get(code=feed_code)
        folder = inbox_path(feed)
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{name}"
        temp.write_bytes(data)
        temp.rename(folder / name)

    def _tick(self, rng: random.Random, parcels: dict[str, int], tick: int) -> None:
        now = datetime.now(UTC).astimezone(SHANGHAI).replace(tzinfo=None)
        stamp = now.strftime("%Y%m%d%H%M%S")
        shop = Shop.objects.filter(slug="demo-shop").first()
        for _ in range(5):
            number = f"HLJ{rng.randrange(10**9):09d}CN"
            parcels[number] = 0
            if shop is not None:
                # The demo shop registers what it ships, as a real shop would through the API,
                # so its printed key reads live shipments and timelines.
                shipment_register(
                    shop=shop,
                    tracking_number=number,
                    order_number=f"ORD-{number[-6:]}",
                    origin_country="CN",
                    destination_country="RU",
                )
        heihe = ["tracking_number,event_code,event_time,time_zone,location_name,location_code,country,description,order_number,carrier,transport_mode,unit_id"]  # fmt: skip
        suifenhe = ["运单号,状态,操作时间,地点,集装箱号"]
        for number, step in list(parcels.items()):
            if rng.random() < 0.5:
                continue
            when = now.strftime("%Y-%m-%d %H:%M:%S")
            if step < 3:
                code = RAIL_STEPS[step]
                heihe.append(
                    f"{number},{code},{when},,Heihe bonded warehouse,CNHEK,CN,,ORD-{number[-6:]},,rail,"
                )
            elif step < len(RAIL_STEPS):
                suifenhe.append(f"{number},{RAIL_STEPS[step]},{when},绥芬河站,TKRU{tick % 7:07d}")
            else:
                del parcels[number]
                continue
            parcels[number] = step + 1
        if tick % 5 == 0:
            heihe.append("BROKEN-ROW,teleported,yesterday,,,,,,,,,")  # shows operators a reject
        # A header-only file is a failed run by design: write only files that carry rows.
        if len(heihe) > 1:
            self._write("heihe-inbox", f"heihe-{stamp}.csv", ("\n".join(heihe) + "\n").encode())
        if len(suifenhe) > 1:
            data = ("\n".join(suifenhe) + "\n").encode("gb18030")
            self._write("suifenhe-wms", f"suifenhe-{stamp}.csv", data)
        air = [
            {"tracking_number": f"HRB{rng.randrange(10**8):08d}US", "event_code": rng.choice(AIR_STEPS),
             "event_time": now.strftime("%Y-%m-%dT%H:%M:%S+08:00"), "location_code": "CNHRB"}
            for _ in range(3)
        ]  # fmt: skip
        self._write(
            "harbin-air-json",
            f"harbin-{stamp}.jsonl",
            "\n".join(json.dumps(a) for a in air).encode(),
        )
        self.stdout.write(
            f"tick {tick}: wrote demo files ({len(heihe) - 1} + {len(suifenhe) - 1} + 3 rows)"
        )
