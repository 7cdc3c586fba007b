"""A shipment's reads touch only the months of the events table that hold its events
(shipments.event_bounds): the bounds the writers keep, and the plans that use them."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from django.db import connection, transaction

from shipments.models import (
    NotificationMoment,
    Shipment,
    TrackingEvent,
    TransportUnit,
    WebhookDelivery,
    WebhookEndpoint,
)
from shipments.notifications.services import (
    buyer_contact_set,
    shop_notification_settings_update,
)
from shipments.partitions import partition_create, partition_name
from shipments.readers.selectors import KEY_AND_SHIPMENT_SQL
from shipments.readers.timeline import timeline_get
from shipments.recording import EventInput, events_record, shipments_recompute
from shipments.services import shop_api_key_create
from tests.conftest import ShopFactory
from tests.plans import partitions_executed

pytestmark = pytest.mark.django_db

# Months far from the test database's own partitions (this month and the next three).
JAN, FEB, MAR, APR = (date(2032, m, 1) for m in (1, 2, 3, 4))


@pytest.fixture
def months() -> None:
    for month in (JAN, FEB, MAR, APR):
        partition_create(month)


def at(month: date, day: int, hour: int = 0) -> datetime:
    return datetime(month.year, month.month, day, hour, tzinfo=UTC)


def record(tn: str, *events: tuple[str, datetime]) -> None:
    events_record(
        events=[
            EventInput(
                line=n,
                code=code,
                occurred_at=when,
                utc_offset_minutes=480,
                tz_source="explicit",
                tracking_number=tn,
                location_code=f"L{when:%m%d%H}",  # distinct places: no two reports merge
            )
            for n, (code, when) in enumerate(events, 1)
        ],
        feed_id=None,
        run_id=None,
        warehouse_id=None,
        source="test",
    )


def detail_partitions(shipment: Shipment, key_prefix: str) -> set[str]:
    """The partitions the API detail's statement reads, run as the API runs it: prepared once,
    here forced to its generic plan (the one a connection ends up reusing)."""
    sql = KEY_AND_SHIPMENT_SQL.replace("%(prefix)s", "$1").replace("%(tn)s", "$2")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE prune_detail(text, text) AS {sql}")
        try:
            cursor.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE prune_detail(%s, %s)",
                [key_prefix, shipment.tracking_number],
            )
            (plan,) = cursor.fetchone()
        finally:
            cursor.execute("DEALLOCATE prune_detail")
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return set(partitions_executed(plan, "shipments_trackingevent_p"))


def test_the_detail_reads_only_the_months_of_the_shipments_events(months: None) -> None:
    shop = ShopFactory()
    api_key, _ = shop_api_key_create(shop=shop)
    record("PRUNE1", ("picked_up", at(JAN, 30, 20)), ("departed", at(FEB, 2, 4)))
    record("OTHER1", ("picked_up", at(MAR, 3)), ("departed", at(APR, 1)))
    Shipment.objects.filter(tracking_number__in=["PRUNE1", "OTHER1"]).update(shop=shop)
    shipment = Shipment.objects.get(tracking_number="PRUNE1")

    assert detail_partitions(shipment, api_key.prefix) == {
        partition_name(JAN),
        partition_name(FEB),
    }
    # Unknown bounds: every month is read, and the timeline is still whole.
    Shipment.objects.filter(pk=shipment.pk).update(first_event_at=None, last_event_at=None)
    everywhere = detail_partitions(shipment, api_key.prefix)
    assert {partition_name(m) for m in (JAN, FEB, MAR, APR)} <= everywhere
    assert [e.code for e in timeline_get(shipment_id=shipment.pk)] == ["picked_up", "departed"]


def test_the_timeline_reads_only_the_shipments_months(months: None) -> None:
    record("PRUNE2", ("picked_up", at(MAR, 10)), ("departed", at(MAR, 11)))
    record("OTHER2", ("picked_up", at(JAN, 3)), ("departed", at(APR, 1)))
    shipment = Shipment.objects.get(tracking_number="PRUNE2")
    from shipments.readers.timeline import _TIMELINE_SQL

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _TIMELINE_SQL, {"id": shipment.pk})
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    assert set(partitions_executed(plan, "shipments_trackingevent_p")) == {partition_name(MAR)}
    assert [e.code for e in timeline_get(shipment_id=shipment.pk)] == ["picked_up", "departed"]


def test_a_new_shipment_is_created_with_its_bounds_and_status_events_time() -> None:
    record("B1", ("departed", at(FEB, 5)), ("picked_up", at(FEB, 1)), ("in_transit", at(FEB, 9)))
    s = Shipment.objects.get(tracking_number="B1")
    assert (s.first_event_at, s.last_event_at) == (at(FEB, 1), at(FEB, 9))
    assert s.status_event is not None and s.status_event.code == "in_transit"
    assert s.status_event_at == at(FEB, 9)


def test_an_older_event_arriving_late_widens_the_span_and_keeps_the_status_event() -> None:
    record("B2", ("departed", at(FEB, 5)), ("in_transit", at(FEB, 9)))
    record("B2", ("picked_up", at(JAN, 20)))
    s = Shipment.objects.get(tracking_number="B2")
    assert (s.first_event_at, s.last_event_at) == (at(JAN, 20), at(FEB, 9))
    assert s.status_event_at == at(FEB, 9)
    # Only the bounds moved: no status change was recorded for it.
    assert list(s.status_changes.values_list("to_status", flat=True)) == ["in_transit"]


def test_a_new_status_event_sets_its_time() -> None:
    record("B3", ("departed", at(FEB, 5)))
    record("B3", ("out_for_delivery", at(MAR, 2, 7)))
    s = Shipment.objects.get(tracking_number="B3")
    assert s.status_event is not None and s.status_event.code == "out_for_delivery"
    assert s.status_event_at == at(MAR, 2, 7)
    assert (s.first_event_at, s.last_event_at) == (at(FEB, 5), at(MAR, 2, 7))


def test_a_withdrawn_event_leaves_bounds_around_every_remaining_event() -> None:
    # What a retraction does (warehouses/ingest/apply/retractions.py): delete, recompute.
    record("B4", ("picked_up", at(JAN, 20)), ("departed", at(FEB, 5)), ("in_transit", at(FEB, 9)))
    s = Shipment.objects.get(tracking_number="B4")
    TrackingEvent.objects.filter(shipment=s, code="in_transit").delete()
    shipments_recompute(shipment_ids=[s.pk])
    s.refresh_from_db()
    assert s.first_event_at is not None and s.last_event_at is not None
    for when in s.events.values_list("occurred_at", flat=True):
        assert s.first_event_at <= when <= s.last_event_at
    assert s.status_event is not None and s.status_event.code == "departed"
    assert s.status_event_at == at(FEB, 5)
    assert [e.code for e in timeline_get(shipment_id=s.pk)] == ["picked_up", "departed"]


def test_the_migration_fills_the_columns_from_the_events() -> None:
    backfill = importlib.import_module("shipments.migrations.0016_shipment_event_bounds")
    record("M1", ("picked_up", at(JAN, 20)), ("departed", at(FEB, 5)))
    # A status event on a unit is not among the shipment's own events: found by id.
    record("M2", ("picked_up", at(MAR, 1)))
    unit_event = TrackingEvent.objects.create(
        unit=TransportUnit.objects.create(number="MSKU1234565", kind="container"),
        code="in_transit",
        status="in_transit",
        occurred_at=at(MAR, 4),
        utc_offset_minutes=0,
        tz_source="explicit",
        dedupe_key="00000000-0000-0000-0000-0000000000a1",
    )
    # Written before the rule: last_event_at earlier than an own event.
    Shipment.objects.filter(tracking_number="M2").update(
        status_event=unit_event, last_event_at=at(FEB, 1)
    )
    Shipment.objects.update(first_event_at=None, status_event_at=None)
    xids = dict(Shipment.objects.values_list("tracking_number", "change_xid"))

    with connection.cursor() as cursor:
        # The migration runs on its own; here the factories' deferred checks would block its
        # ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(backfill._BACKFILL)

    m1, m2 = (Shipment.objects.get(tracking_number=tn) for tn in ("M1", "M2"))
    assert (m1.first_event_at, m1.last_event_at, m1.status_event_at) == (
        at(JAN, 20),
        at(FEB, 5),
        at(FEB, 5),
    )
    assert (m2.first_event_at, m2.last_event_at, m2.status_event_at) == (
        at(MAR, 1),
        at(MAR, 1),
        at(MAR, 4),
    )
    # Not a change a shop's sync walk hands out again.
    assert m1.change_xid == xids["M1"]


def months_scanned(during: Callable[[], None]) -> set[str]:
    """The event partitions that `during` read through an index, from this transaction's own
    statistics (pg_stat_xact_user_tables)."""
    sql = (
        "SELECT relname, idx_scan FROM pg_stat_xact_user_tables"
        " WHERE relname LIKE 'shipments_trackingevent_p%%'"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        before = dict(cursor.fetchall())
        during()
        cursor.execute(sql)
        after = dict(cursor.fetchall())
    return {name for name, scans in after.items() if scans > before.get(name, 0)}


def test_a_known_shipments_recompute_reads_only_its_months_and_the_new_events(months: None) -> None:
    # The recorder recomputes a known shipment from all its events (status_rules.RECOMPUTE_SQL):
    # the months between its bounds and those of the batch's new events, not every month.
    record("R1", ("picked_up", at(JAN, 20)), ("departed", at(FEB, 5)))
    record("R1X", ("picked_up", at(APR, 2)))

    assert months_scanned(lambda: record("R1", ("in_transit", at(MAR, 1)))) == {
        partition_name(JAN),
        partition_name(FEB),
        partition_name(MAR),
    }
    s = Shipment.objects.get(tracking_number="R1")
    assert (s.first_event_at, s.last_event_at) == (at(JAN, 20), at(MAR, 1))
    assert s.status_event is not None and s.status_event.code == "in_transit"
    # Unknown bounds: every month is read, and the late event still finds the whole span.
    Shipment.objects.filter(pk=s.pk).update(first_event_at=None, last_event_at=None)
    assert partition_name(APR) in months_scanned(lambda: record("R1", ("arrived", at(JAN, 2))))
    s.refresh_from_db()
    assert (s.first_event_at, s.last_event_at) == (at(JAN, 2), at(MAR, 1))
    assert s.status_event is not None and s.status_event.code == "in_transit"


def test_the_notices_read_their_events_in_their_months(months: None) -> None:
    # RECOMPUTE_SQL writes each webhook notice with its event (shipments.webhooks) and each
    # buyer moment from its event (shipments.notifications): each read in the event's month,
    # an unproven claim's check of the event's time included.
    shop = ShopFactory()
    shop_notification_settings_update(
        shop=shop, enabled=True, moments=["out_for_delivery", "delivered"]
    )
    WebhookEndpoint.objects.create(
        shop=shop,
        url="http://127.0.0.1:9/hooks",
        event_types=["shipment.status_changed", "shipment.tracking_updated"],
        secret="s",
    )
    record("W1", ("picked_up", at(JAN, 20)), ("departed", at(FEB, 5)))
    record("W1X", ("picked_up", at(APR, 2)))
    Shipment.objects.filter(tracking_number="W1").update(shop=shop, claim_limited_since=at(JAN, 1))
    w1 = Shipment.objects.get(tracking_number="W1")
    buyer_contact_set(shipment=w1, shop=shop, email="buyer@example.com")

    assert months_scanned(lambda: record("W1", ("out_for_delivery", at(MAR, 1)))) == {
        partition_name(JAN),
        partition_name(FEB),
        partition_name(MAR),
    }
    sent = {d.event_type: d.data for d in WebhookDelivery.objects.filter(shipment=w1)}
    assert set(sent) == {"shipment.status_changed", "shipment.tracking_updated"}
    for data in sent.values():
        assert data["event"]["code"] == "out_for_delivery"
        assert data["event"]["occurred_at"].startswith("2032-03-01T00:00:00")
    moment = NotificationMoment.objects.get(shipment=w1)
    assert moment.moment == "out_for_delivery"
    assert moment.event is not None and moment.event.occurred_at == at(MAR, 1)
    # A claim proven only from after the latest event: no notice names it.
    Shipment.objects.filter(pk=w1.pk).update(claim_limited_since=at(MAR, 2))
    record("W1", ("arrived", at(FEB, 20)))
    assert WebhookDelivery.objects.filter(shipment=w1).count() == 2
    # A delivery from before the claim changes the status, but no notice or moment tells it.
    record("W1", ("delivered", at(FEB, 25)))
    assert Shipment.objects.get(pk=w1.pk).status == "delivered"
    assert WebhookDelivery.objects.filter(shipment=w1).count() == 2
    assert list(
        NotificationMoment.objects.filter(shipment=w1).values_list("moment", flat=True)
    ) == ["out_for_delivery"]
