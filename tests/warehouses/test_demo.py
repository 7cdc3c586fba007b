"""The demo's data: `make demo` seeds feeds and a shop, and the simulator feeds them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from shipments.models import Shipment, Shop
from warehouses.ingest.runs import feed_run_execute
from warehouses.models import Feed, FeedRun
from warehouses.sources.inbox import inbox_collect

pytestmark = pytest.mark.django_db


def test_the_demo_shop_tracks_the_parcels_the_simulator_ships(
    settings: Any, tmp_path: Path
) -> None:
    settings.INBOX_ROOT = tmp_path
    call_command("demo_seed", stdout=io.StringIO())
    call_command("demo_simulator", ticks=1, every=0, seed=7, stdout=io.StringIO())
    shop = Shop.objects.get(slug="demo-shop")
    registered = set(Shipment.objects.filter(shop=shop).values_list("tracking_number", flat=True))
    assert len(registered) == 5
    (run,) = inbox_collect(feed=Feed.objects.get(code="heihe-inbox"))
    run = feed_run_execute(run_id=run.pk)
    assert run.status in (FeedRun.Status.SUCCEEDED, FeedRun.Status.PARTIAL)
    moved = Shipment.objects.filter(shop=shop, last_event_at__isnull=False)
    # Each new parcel moves with probability 1/2 per tick (seeded here): those that did have
    # their first event on the shop's shipment.
    assert 0 < moved.count() == run.events_created
    assert set(moved.values_list("tracking_number", flat=True)) <= registered
