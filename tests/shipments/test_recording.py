"""The recorder: status rules, history, dedupe, and a constant number of queries per batch."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipments.models import Shipment, ShipmentEstimate, StatusChange, TrackingEvent
from shipments.recording import EventInput, events_record
from shipments.statuses import EVENT_CODES

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)


def event(tn: str, code: str, hours: float, **kw: object) -> EventInput:
    return EventInput(
        line=int(hours * 10),
        code=code,
        occurred_at=T0 + timedelta(hours=hours),
        utc_offset_minutes=480,
        tz_source="explicit",
        tracking_number=tn,
        **kw,  # type: ignore[arg-type]
    )


def record(*events: EventInput, source: str = "test") -> None:
    events_record(events=list(events), feed_id=None, run_id=None, warehouse_id=None, source=source)


def test_an_earlier_event_arriving_late_never_moves_the_status_back() -> None:
    record(event("TN1", "picked_up", 0), event("TN1", "out_for_delivery", 10))
    record(event("TN1", "departed", 5))
    shipment = Shipment.objects.get(tracking_number="TN1")
    assert shipment.status == "out_for_delivery"
    assert shipment.status_event is not None
    assert shipment.status_event.code == "out_for_delivery"
    assert shipment.last_event_at == T0 + timedelta(hours=10)


def test_delivered_is_terminal_unless_a_later_return() -> None:
    record(event("TN1", "delivered", 10))
    record(event("TN1", "in_transit", 12), event("TN1", "exception", 13))
    assert Shipment.objects.get(tracking_number="TN1").status == "delivered"
    record(event("TN1", "returning", 20))
    assert Shipment.objects.get(tracking_number="TN1").status == "returned"


def test_every_status_change_is_recorded_with_the_event_that_caused_it() -> None:
    record(event("TN1", "info_received", 0))
    record(event("TN1", "departed", 2))
    record(event("TN1", "arrived", 3))  # same status, new stage? no: same stage too
    record(event("TN1", "delivered", 9))
    changes = list(
        StatusChange.objects.filter(shipment__tracking_number="TN1")
        .order_by("changed_at", "id")
        .values_list("from_status", "to_status", "event__code")
    )
    assert changes == [
        ("pending", "info_received", "info_received"),
        ("info_received", "in_transit", "departed"),
        ("in_transit", "delivered", "delivered"),
    ]


def test_eta_updates_do_not_change_the_status() -> None:
    record(event("TN1", "departed", 1), event("TN1", "eta_updated", 2))
    shipment = Shipment.objects.get(tracking_number="TN1")
    assert (shipment.status, shipment.status_event.code) == ("in_transit", "departed")  # type: ignore[union-attr]
    assert shipment.last_event_at == T0 + timedelta(hours=2)


def test_the_same_event_from_the_same_source_is_stored_once() -> None:
    record(event("TN1", "departed", 1, location_code="CNSFH"))
    record(event("TN1", "departed", 1, location_code="CNSFH"))
    record(event("TN1", "departed", 1, location_code="CNSFH"), source="other-source")
    assert TrackingEvent.objects.count() == 2


@pytest.mark.parametrize("size", [10, 1000])
def test_a_batch_costs_the_same_number_of_queries_whatever_its_size(size: int) -> None:
    batch = [event(f"TN{i:05d}", "departed", i / 100) for i in range(size)]
    with CaptureQueriesContext(connection) as queries:
        record(*batch)
    # temp-table DDL, stored-key lookup, shipments upsert, COPY, touched, lock, recompute:
    # the same seven whatever the batch size, never one per row.
    assert len(queries) == 7, [" ".join(q["sql"].split())[:40] for q in queries]
    assert TrackingEvent.objects.count() == size
    assert Shipment.objects.filter(status="in_transit").count() == size


def test_dedupe_keys_are_the_ones_stored_by_earlier_versions() -> None:
    # Keys are the identity of stored events: a change here would make a re-run after an
    # upgrade store every event a second time.
    parcel = event("TN1", "departed", 1, location_code="CNSFH")
    assert str(parcel.dedupe_key("feed:7")) == "b17670f4-f1ab-501d-e8d3-b90dfc465c6f"
    on_unit = EventInput(
        line=1,
        code="loaded",
        occurred_at=T0 + timedelta(hours=1),
        utc_offset_minutes=0,
        tz_source="explicit",
        unit_number="MSKU1234565",
        location_name=" Suifenhe Station ",
    )
    assert str(on_unit.dedupe_key("test")) == "cf21ac98-54a1-76a1-cb0c-bfd822d9d866"
    record(parcel, source="feed:7")
    stored = TrackingEvent.objects.get()
    assert stored.dedupe_key == parcel.dedupe_key("feed:7")


def test_free_text_with_tabs_newlines_and_backslashes_is_stored_exactly() -> None:
    odd = event(
        "TN1",
        "departed",
        1,
        location_name="Heihe\tgate 2",
        description='line one\nline two\r\\ "quoted"',
        raw="TN1,departed,...\\N",
        extra={"partner_code": "DEP\t1", "count": 3, "note": "a\\b"},
    )
    plain = event("TN2", "departed", 1, extra={"partner_code": "DEP"})
    same_shape = event("TN3", "arrived", 2, extra={"partner_code": "DEP"})
    record(odd, plain, same_shape)
    stored = TrackingEvent.objects.get(shipment__tracking_number="TN1")
    assert stored.location_name == "Heihe\tgate 2"
    assert stored.description == 'line one\nline two\r\\ "quoted"'
    assert stored.raw == "TN1,departed,...\\N"
    assert stored.extra == {"partner_code": "DEP\t1", "count": 3, "note": "a\\b"}
    assert TrackingEvent.objects.get(shipment__tracking_number="TN3").extra == {
        "partner_code": "DEP"
    }


def test_a_nul_byte_in_free_text_fails_the_batch_as_before() -> None:
    with pytest.raises(psycopg.DataError):
        record(event("TN1", "departed", 1, description="bad\x00byte"))


def shipment_updates() -> int:
    """Rows of shipments_shipment updated by this connection (compare two readings: the view
    may still hold counts of earlier transactions not yet reported to the statistics)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'shipments_shipment'"
        )
        (updated,) = cursor.fetchone()
    return int(updated)


def test_a_new_shipment_is_written_once_in_its_final_state() -> None:
    updates = shipment_updates()
    record(
        event("TN1", "picked_up", 0),
        event("TN1", "delivered", 10),
        event("TN1", "departed", 5),
        event("TN1", "in_transit", 12),  # after the delivery: does not count
        event("TN1", "eta_updated", 15),
        event("TN2", "eta_updated", 1),  # no event with a status: stays pending
    )
    assert shipment_updates() == updates
    first = Shipment.objects.get(tracking_number="TN1")
    assert (first.status, first.stage) == ("delivered", "last_mile")
    assert first.status_event is not None and first.status_event.code == "delivered"
    assert first.last_event_at == T0 + timedelta(hours=15)
    assert first.status_changed_at is not None
    assert list(
        StatusChange.objects.filter(shipment=first).values_list(
            "from_status", "to_status", "from_stage", "to_stage", "event__code"
        )
    ) == [("pending", "delivered", "", "last_mile", "delivered")]
    second = Shipment.objects.get(tracking_number="TN2")
    assert (second.status, second.stage, second.status_event) == ("pending", "", None)
    assert second.last_event_at == T0 + timedelta(hours=1)
    assert second.status_changed_at is None
    assert not StatusChange.objects.filter(shipment=second).exists()


@pytest.mark.parametrize(
    "codes",
    [
        [("info_received", 0), ("arrived", 3), ("departed", 5), ("eta_updated", 8)],
        [("delivered", 4), ("out_for_delivery", 6), ("returning", 9), ("in_transit", 7)],
        [("customs_held", 2), ("customs_held", 2.5), ("picked_up", 1)],
        [("departed", 5), ("customs_held", 5), ("picked_up", 1)],  # a tie: the later row wins
    ],
)
def test_a_new_shipment_gets_the_state_the_recompute_gives_a_known_one(
    codes: list[tuple[str, float]],
) -> None:
    assert _new_and_known_states(codes, "NEW", "KNOWN")


def _state(shipment: Shipment) -> tuple[object, ...]:
    estimate = ShipmentEstimate.objects.filter(shipment=shipment).first()
    return (
        shipment.status,
        shipment.stage,
        shipment.status_event.code if shipment.status_event else None,
        shipment.status_event.occurred_at if shipment.status_event else None,
        shipment.last_event_at,
        shipment.status_changed_at is None,
        (estimate.stage, estimate.stage_entered_at) if estimate else None,
        list(
            StatusChange.objects.filter(shipment=shipment)
            .order_by("id")
            .values_list("from_status", "to_status", "from_stage", "to_stage", "event__code")
        ),
    )


def _new_and_known_states(codes: list[tuple[str, float]], new: str, known: str) -> bool:
    """Records the same events, in one batch, on a shipment the batch creates (its state
    computed in Python) and on one that exists (computed by RECOMPUTE_SQL); True if both end
    in the same state."""
    Shipment.objects.create(tracking_number=known)
    record(*[event(tn, code, hours) for tn in (new, known) for code, hours in codes])
    created, existing = (Shipment.objects.get(tracking_number=tn) for tn in (new, known))
    return _state(created) == _state(existing)


_numbers = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        # Every code (with and without a status or stage), times on a coarse grid so that
        # ties and out-of-order arrivals are common.
        st.tuples(st.sampled_from(sorted(EVENT_CODES)), st.integers(0, 8).map(float)),
        min_size=1,
        max_size=8,
    )
)
def test_any_events_give_a_new_shipment_the_state_the_recompute_gives_a_known_one(
    codes: list[tuple[str, float]],
) -> None:
    n = next(_numbers)
    assert _new_and_known_states(codes, f"NEWH{n}", f"KNOWNH{n}")
