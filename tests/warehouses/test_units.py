"""Consolidation units: manifests fill them, one event on a unit moves every parcel inside it.

The 20,000-parcel cases are the issue's own numbers: they check that the cost is a constant
number of queries and one event row, not one per parcel.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shipments.models import Shipment, TrackingEvent, TransportUnit, UnitMembership
from tests.conftest import FeedFactory, WarehouseFactory, hub_csv
from warehouses.ingest.apply import records_apply
from warehouses.ingest.runs import feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun, RejectedRecord
from warehouses.normalize.context import feed_context
from warehouses.parsers.base import Record

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]
BIG = 20_000
MANIFEST_HEADER = "unit_id,unit_kind,tracking_number,loaded_at,unloaded_at\n"


def manifest(*rows: str) -> bytes:
    return (MANIFEST_HEADER + "".join(f"{row}\n" for row in rows)).encode()


def big_manifest(unit: str, parcels: int, prefix: str = "BIG") -> bytes:
    rows = (f"{unit},container,{prefix}{n:06d},2026-05-01 08:00:00," for n in range(parcels))
    return manifest(*rows)


@pytest.fixture
def manifest_feed(db: None) -> Feed:
    return FeedFactory(format=Feed.Format.MANIFEST_CSV)


def _members(unit: str) -> dict[str, datetime | None]:
    return dict(
        UnitMembership.objects.filter(unit__number=unit).values_list(
            "shipment__tracking_number", "unloaded_at"
        )
    )


def test_a_manifest_creates_the_unit_and_its_parcels_in_the_feeds_local_time(
    manifest_feed: Feed, ingest: Ingest
) -> None:
    run = ingest(
        manifest_feed,
        manifest(
            "TGHU8837461,container,HB001,2026-05-01 08:00:00,",
            "TGHU8837461,container,hb 002,2026-05-01T09:00:00+08:00,2026-05-02 10:00:00",
        ),
    )

    assert (run.status, run.rejected) == (FeedRun.Status.SUCCEEDED, 0)
    unit = TransportUnit.objects.get(number="TGHU8837461")
    assert unit.kind == "container"
    first = UnitMembership.objects.get(shipment__tracking_number="HB001")
    # 08:00 in Heihe (the warehouse's zone), never taken as UTC
    assert first.loaded_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    assert _members("TGHU8837461") == {
        "HB001": None,
        "HB002": datetime(2026, 5, 2, 2, 0, tzinfo=UTC),
    }
    assert Shipment.objects.get(tracking_number="HB002").status == "pending"


def test_a_redelivered_manifest_adds_nothing_and_a_later_unloaded_at_closes_the_membership(
    manifest_feed: Feed, ingest: Ingest
) -> None:
    ingest(manifest_feed, manifest("U1,bag,HB001,2026-05-01 08:00:00,"))
    ingest(manifest_feed, manifest("U1,bag,HB001,2026-05-01 08:00:00,"), reprocess=True)
    assert UnitMembership.objects.count() == 1

    ingest(manifest_feed, manifest("U1,bag,HB001,2026-05-01 08:00:00,2026-05-03 08:00:00"))

    assert _members("U1") == {"HB001": datetime(2026, 5, 3, 0, 0, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("U1,container,,2026-05-01 08:00:00,", "tracking_number", "missing tracking number"),
        ("U1,box,HB9,2026-05-01 08:00:00,", "unit_kind", "unknown unit kind 'box'"),
        ("U1,container,HB9,yesterday,", "loaded_at", "unparseable time"),
        (
            "U1,container,HB9,2026-05-02 08:00:00,2026-05-01 08:00:00",
            "unloaded_at",
            "is before loaded_at",
        ),
    ],
)
def test_each_unusable_manifest_row_is_rejected_with_its_field_and_reason(
    manifest_feed: Feed, ingest: Ingest, row: str, field: str, reason: str
) -> None:
    run = ingest(manifest_feed, manifest("U1,container,GOOD1,2026-05-01 08:00:00,", row))

    assert (run.records, run.rejected, run.status) == (2, 1, FeedRun.Status.PARTIAL)
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.line, reject.field) == (3, field)
    assert reason in reject.reason
    assert set(_members("U1")) == {"GOOD1"}


def test_a_manifest_time_without_any_zone_is_rejected_not_taken_as_utc(ingest: Ingest) -> None:
    warehouse = WarehouseFactory(code="nozone-units", timezone="", unlocode="", city="")
    feed = FeedFactory(warehouse=warehouse, format=Feed.Format.MANIFEST_CSV)

    run = ingest(feed, manifest("U1,container,HB1,2026-05-01 08:00:00,"))

    reject = RejectedRecord.objects.get(run=run)
    assert (reject.field, run.status) == ("loaded_at", FeedRun.Status.FAILED)
    assert "no time zone" in reject.reason
    assert not UnitMembership.objects.exists()


def test_a_unit_event_counts_only_for_parcels_inside_at_that_moment(
    manifest_feed: Feed, ingest: Ingest
) -> None:
    ingest(
        manifest_feed,
        manifest(
            "C1,container,INSIDE,2026-05-01 08:00:00,",
            "C1,container,LEFT,2026-05-01 08:00:00,2026-05-01 12:00:00",
            "C1,container,LATE,2026-05-03 08:00:00,",
        ),
    )
    rail = FeedFactory(warehouse=manifest_feed.warehouse)

    ingest(rail, hub_csv(",departed,2026-05-02 06:00:00,,Suifenhe,CNSFH,CN,,,,rail,C1"))

    statuses = dict(Shipment.objects.values_list("tracking_number", "status"))
    assert statuses == {"INSIDE": "in_transit", "LEFT": "pending", "LATE": "pending"}
    event = TrackingEvent.objects.get()
    assert (event.shipment_id, event.unit.number) == (None, "C1")


def test_an_event_at_the_moment_of_unloading_reaches_the_parcels_being_unloaded(
    manifest_feed: Feed, ingest: Ingest
) -> None:
    ingest(
        manifest_feed,
        manifest(
            "C2,container,OUT1,2026-05-01 08:00:00,2026-05-05T12:00:00+02:00",
            "C2,container,STAYS,2026-05-01 08:00:00,",
        ),
    )
    rail = FeedFactory(warehouse=manifest_feed.warehouse)
    ingest(rail, hub_csv(",unloaded,2026-05-05T12:00:00+02:00,,Malaszewicze,PLMAL,PL,,,,rail,C2"))
    ingest(rail, hub_csv(",departed,2026-05-06 12:00:00,,Malaszewicze,PLMAL,PL,,,,rail,C2"))
    out = Shipment.objects.get(tracking_number="OUT1")
    assert out.status_event is not None
    assert out.status_event.code == "unloaded"
    stays = Shipment.objects.get(tracking_number="STAYS")
    assert stays.status_event is not None
    assert stays.status_event.code == "departed"
    event = TrackingEvent.objects.get(code="unloaded")
    assert (event.shipment_id, event.unit.number) == (None, "C2")


def test_loading_parcels_after_a_unit_event_gives_them_only_later_events(
    manifest_feed: Feed, ingest: Ingest
) -> None:
    rail = FeedFactory(warehouse=manifest_feed.warehouse)
    ingest(rail, hub_csv(",arrived,2026-05-05 06:00:00,,Blagoveshchensk,RUBQS,RU,,,,rail,C2"))

    # A manifest arriving late puts the parcel in the unit from before the event: it counts.
    ingest(manifest_feed, manifest("C2,container,LATEMANIFEST,2026-05-01 08:00:00,"))

    shipment = Shipment.objects.get(tracking_number="LATEMANIFEST")
    assert (shipment.status, shipment.stage) == ("in_transit", "line_haul")
    assert shipment.status_event is not None and shipment.status_event.unit is not None


# --- the 20,000-parcel container ---------------------------------------------------------------


def _membership_records(unit: str, parcels: int) -> list[Record]:
    return [
        Record(
            line=n + 2,
            raw="",
            kind="membership",
            unit_id=unit,
            unit_kind="container",
            tracking_number=f"{unit}-{n:06d}",
            event_time="2026-05-01 08:00:00",
        )
        for n in range(parcels)
    ]


def _apply_queries(feed: Feed, unit: str, parcels: int) -> int:
    run = FeedRun.objects.create(feed=feed, status=FeedRun.Status.RUNNING)
    records = _membership_records(unit, parcels)
    ctx = feed_context(feed)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        rejects = records_apply(run=run, records=records, ctx=ctx, events=[])
    assert rejects == []
    assert UnitMembership.objects.filter(unit__number=unit).count() == parcels
    return len(queries)


def test_a_20000_parcel_manifest_costs_the_same_queries_as_a_10_parcel_one(
    manifest_feed: Feed,
) -> None:
    small = _apply_queries(manifest_feed, "SMALL1", 10)
    big = _apply_queries(manifest_feed, "BIG1", BIG)

    assert big == small
    assert big <= 10


def test_a_20000_parcel_manifest_goes_through_the_pipeline_in_one_batch(
    manifest_feed: Feed, settings: object
) -> None:
    settings.INGEST_BATCH_SIZE = 50_000  # type: ignore[attr-defined]
    import io

    created = feed_run_create(
        feed=manifest_feed, content=io.BytesIO(big_manifest("TGHU0000001", BIG)), enqueue=False
    )
    with CaptureQueriesContext(connection) as queries:
        run = feed_run_execute(run_id=created.pk)

    assert (run.status, run.records, run.rejected) == (FeedRun.Status.SUCCEEDED, BIG, 0)
    assert UnitMembership.objects.filter(unit__number="TGHU0000001").count() == BIG
    assert len(queries) < 40


def _container(feed: Feed, unit: str, parcels: int) -> None:
    ctx = feed_context(feed)
    run = FeedRun.objects.create(feed=feed, status=FeedRun.Status.RUNNING)
    with transaction.atomic():
        records_apply(run=run, records=_membership_records(unit, parcels), ctx=ctx, events=[])


def _unit_event_queries(rail: Feed, ingest: Ingest, unit: str) -> tuple[int, FeedRun]:
    payload = hub_csv(f",border_crossed,2026-05-02 06:00:00,,Pogranichny,RUPGS,RU,,,,rail,{unit}")
    with CaptureQueriesContext(connection) as queries:
        run = ingest(rail, payload)
    return len(queries), run


def test_one_rail_event_on_a_20000_parcel_container_moves_every_parcel_with_one_event_row(
    manifest_feed: Feed, ingest: Ingest
) -> None:
    _container(manifest_feed, "SMALLBOX", 10)
    _container(manifest_feed, "TRAINBOX", BIG)
    rail = FeedFactory(warehouse=manifest_feed.warehouse)

    small_queries, _ = _unit_event_queries(rail, ingest, "SMALLBOX")
    big_queries, run = _unit_event_queries(rail, ingest, "TRAINBOX")

    assert big_queries == small_queries
    assert (run.status, run.events_created) == (FeedRun.Status.SUCCEEDED, 1)
    event = TrackingEvent.objects.get(run=run)
    assert event.shipment_id is None and event.unit is not None
    assert TrackingEvent.objects.filter(unit__number="TRAINBOX").count() == 1
    inside = Shipment.objects.filter(tracking_number__startswith="TRAINBOX-")
    assert inside.count() == BIG
    assert inside.filter(status="in_transit", stage="line_haul", status_event=event).count() == BIG
    # Every parcel's timeline holds the unit's event (read as the timeline selector reads it).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(DISTINCT m.shipment_id)
            FROM shipments_unitmembership m
            JOIN shipments_trackingevent e
              ON e.unit_id = m.unit_id AND e.occurred_at >= m.loaded_at
             AND (m.unloaded_at IS NULL OR e.occurred_at < m.unloaded_at)
            WHERE e.id = %s
            """,
            [event.pk],
        )
        (timelines,) = cursor.fetchone()
    assert timelines == BIG


# --- admin -----------------------------------------------------------------------------------


def test_the_unit_admin_lists_member_counts_without_a_query_per_unit(
    manifest_feed: Feed, ingest: Ingest, admin_client: Client
) -> None:
    url = reverse("admin:shipments_transportunit_changelist")
    ingest(manifest_feed, manifest("A1,bag,P1,2026-05-01 08:00:00,"))
    with CaptureQueriesContext(connection) as one:
        assert admin_client.get(url).status_code == 200
    ingest(
        manifest_feed,
        manifest(*(f"B{n},bag,Q{n}{m},2026-05-01 08:00:00," for n in range(5) for m in range(3))),
    )

    with CaptureQueriesContext(connection) as six:
        response = admin_client.get(url)

    assert len(six) == len(one)
    assert UnitMembership.objects.filter(unit__number="B3").count() == 3
    assert ">3<" in response.content.decode()


def test_a_big_unit_links_to_its_members_instead_of_an_inline(
    manifest_feed: Feed, admin_client: Client
) -> None:
    _container(manifest_feed, "HUGE", 300)
    unit = TransportUnit.objects.get(number="HUGE")

    page = admin_client.get(reverse("admin:shipments_transportunit_change", args=[unit.pk]))
    members = admin_client.get(
        reverse("admin:shipments_unitmembership_changelist"), {"unit__id__exact": unit.pk}
    )

    assert page.status_code == 200
    assert "All 300 members" in page.content.decode()
    assert members.status_code == 200
