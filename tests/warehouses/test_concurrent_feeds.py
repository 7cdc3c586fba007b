"""Two workers ingesting two feeds that name the same parcels, at the same moment.

Each worker is a real OS process (`manage.py ingest`, the workers' pipeline) on the test
database. The outcome must be the serial one: no deadlock, no run retried, every event stored
once, and every shipment's status, status event and last event time as after the same two
files ingested one after the other into a fresh database.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.conftest import HUB_HEADER, FeedFactory, WarehouseFactory

ROOT = Path(__file__).resolve().parents[2]
PARCELS = 2400
START = datetime(2026, 4, 1, 8, 0)

pytestmark = pytest.mark.django_db(transaction=True)

# (feed, code, hours after the parcel's start, which parcels): the carrier's events fall
# between the warehouse's, so each shipment's status depends on both files.
STEPS = [
    ("warehouse", "warehouse_received", 0, lambda p: True),
    ("carrier", "picked_up", 6, lambda p: p % 2 == 0),
    ("warehouse", "departed", 24, lambda p: True),
    ("carrier", "border_crossed", 30, lambda p: True),
    ("warehouse", "customs_import_cleared", 40, lambda p: p % 3 == 0),
    ("carrier", "delivered", 60, lambda p: p % 4 == 0),
]


def _files(folder: Path) -> dict[str, Path]:
    """One hub-csv file per feed; each step's rows in its own shuffled parcel order, so the
    two workers' batches name the same parcels in different orders."""
    rng = random.Random(7)
    lines: dict[str, list[str]] = {"warehouse": [], "carrier": []}
    for feed, code, hours, which in STEPS:
        parcels = [p for p in range(PARCELS) if which(p)]
        rng.shuffle(parcels)
        for p in parcels:
            at = START + timedelta(minutes=p, hours=hours)
            lines[feed].append(f"CC{p:06d},{code},{at:%Y-%m-%dT%H:%M:%S}+08:00,,,,CN,,,,,\n")
    paths = {}
    for feed, rows in lines.items():
        paths[feed] = folder / f"{feed}.csv"
        paths[feed].write_text(HUB_HEADER + "".join(rows))
    return paths


def _expected_events() -> int:
    return sum(sum(1 for p in range(PARCELS) if which(p)) for _, _, _, which in STEPS)


def _env() -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "INGEST_BATCH_SIZE": "500",
    }


def _ingest(path: Path, feed: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "ingest",
            str(path),
            "--warehouse",
            f"cc-{feed}",
            "--feed",
            f"cc-{feed}",
            "--json",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "deadlock" not in (out + err).lower(), err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _state() -> tuple[int, set[str], dict[str, tuple[Any, ...]]]:
    """Events (count, keys) and each shipment's status, status event (by its dedupe key, the
    same in any database) and last event time."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), array_agg(dedupe_key::text) FROM shipments_trackingevent")
        count, keys = cursor.fetchone()
        cursor.execute(
            "SELECT s.tracking_number, s.status, s.stage, e.dedupe_key::text, s.last_event_at"
            " FROM shipments_shipment s LEFT JOIN shipments_trackingevent e"
            " ON e.id = s.status_event_id"
        )
        shipments = {row[0]: row[1:] for row in cursor.fetchall()}
    return count, set(keys or []), shipments


def _runs() -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, attempts FROM warehouses_feedrun ORDER BY id")
        return [(status, attempts) for status, attempts in cursor.fetchall()]


def _wipe() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE shipments_shipment, shipments_transportunit, warehouses_feedrun CASCADE"
        )


def test_two_workers_on_two_feeds_naming_the_same_parcels_end_as_a_serial_run(
    tmp_path: Path,
) -> None:
    for feed in ("warehouse", "carrier"):
        FeedFactory(code=f"cc-{feed}", warehouse=WarehouseFactory(code=f"cc-{feed}"))
    files = _files(tmp_path)
    expected = _expected_events()

    for feed in ("warehouse", "carrier"):
        assert _finished(_ingest(files[feed], feed))["status"] == "succeeded"
    serial = _state()
    assert serial[0] == len(serial[1]) == expected
    assert len(serial[2]) == PARCELS
    # Every fourth parcel was delivered (the carrier's last event), whatever came before.
    assert {serial[2][f"CC{p:06d}"][0] for p in range(0, PARCELS, 4)} == {"delivered"}

    _wipe()
    assert _state()[0] == 0
    workers = [_ingest(files[feed], feed) for feed in ("warehouse", "carrier")]
    results = [_finished(worker) for worker in workers]
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert _runs() == [("succeeded", 1), ("succeeded", 1)]
    together = _state()
    assert together[0] == expected
    assert together[1] == serial[1]
    assert together[2] == serial[2]
