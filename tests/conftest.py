"""Shared fixtures and factories. Tests run against the real PostgreSQL and Redis."""

from __future__ import annotations

import io
from collections.abc import Callable

import factory
import pytest

from shipments.models import Shipment, Shop
from warehouses.ingest.runs import feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun, Warehouse


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"wh-{n}")
    name = factory.Sequence(lambda n: f"Warehouse {n}")
    kind = Warehouse.Kind.BONDED
    country = "CN"
    city = "Heihe"
    unlocode = "CNHEK"
    timezone = "Asia/Shanghai"


class FeedFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feed

    code = factory.Sequence(lambda n: f"feed-{n}")
    name = factory.Sequence(lambda n: f"Feed {n}")
    warehouse = factory.SubFactory(WarehouseFactory)
    format = Feed.Format.HUB_CSV


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shipment

    tracking_number = factory.Sequence(lambda n: f"TN{n:08d}")


HUB_HEADER = (
    "tracking_number,event_code,event_time,time_zone,location_name,location_code,country,"
    "description,order_number,carrier,transport_mode,unit_id\n"
)


def hub_csv(*rows: str, header: str = HUB_HEADER) -> bytes:
    return (header + "".join(r if r.endswith("\n") else r + "\n" for r in rows)).encode()


@pytest.fixture
def feed(db: None) -> Feed:
    return FeedFactory()


@pytest.fixture
def ingest(db: None) -> Callable[..., FeedRun]:
    """Create a run from bytes and execute it in-process through the real pipeline."""

    def run(feed: Feed, payload: bytes, name: str = "upload.csv", **kwargs: object) -> FeedRun:
        created = feed_run_create(
            feed=feed, content=io.BytesIO(payload), original_name=name, enqueue=False, **kwargs
        )
        if created.status == FeedRun.Status.DUPLICATE:
            return created
        return feed_run_execute(run_id=created.pk)

    return run
