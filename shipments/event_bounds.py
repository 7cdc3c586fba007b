"""The one rule for reading a shipment's events by what prunes the events table's months.

The events table is partitioned by month of `occurred_at` (shipments/partitions.py). A read by
`shipment_id` or by an event's `id` alone cannot tell which months hold the rows, so it probes
every month's index. The shipment row carries what can (shipments.models.Shipment):
`first_event_at`/`last_event_at` bound its own events' times, `status_event_at` is the time of
its status event. Both are conservative, never narrower than the truth; NULL means unknown, and
the fragments below then bound nothing (`-infinity`/`infinity`): the unpruned read, still right.

The bounds are expressions of the shipment's columns, no column of the events table, so the
executor prunes months at run time even in a generic plan (a prepared statement) or in a
correlated subquery, one shipment at a time. Both arguments are SQL written by this code base,
never user input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db.models import F, FilteredRelation, Q, Value
from django.db.models.functions import Coalesce

if TYPE_CHECKING:
    from shipments.models import Shipment, TrackingEvent


def _between(at: str, low: str, high: str) -> str:
    return (
        f"{at} BETWEEN coalesce({low}, '-infinity'::timestamptz)"
        f" AND coalesce({high}, 'infinity'::timestamptz)"
    )


def own_events_within(shipment: str, at: str, *, also: tuple[str, str] | None = None) -> str:
    """SQL true for an own event of `shipment` (a shipments_shipment alias) whose `at` (its
    occurred_at) lies within the shipment's bounds, which every own event does.

    `also` (low, high: SQL times, NULL for none) widens them to events the bounds do not count
    yet: a batch's new events, before the recompute that counts them (recording.status_rules).
    """
    low, high = f"{shipment}.first_event_at", f"{shipment}.last_event_at"
    if also is not None:
        # least/greatest skip a NULL, so unknown bounds are made infinite first.
        low = f"least(coalesce({low}, '-infinity'::timestamptz), {also[0]})"
        high = f"greatest(coalesce({high}, 'infinity'::timestamptz), {also[1]})"
    return _between(at, low, high)


def event_at_recorded(at: str, recorded: str) -> str:
    """SQL true when `at` (an event's occurred_at) may be `recorded`, a time kept for that event
    (NULL: unknown): add it to a join on the event's id."""
    return _between(at, recorded, recorded)


def status_event_at(shipment: str, at: str) -> str:
    """SQL true when `at` (an event's occurred_at) may be that of `shipment`'s status event:
    add it to a join on `id = shipment.status_event_id`."""
    return event_at_recorded(at, f"{shipment}.status_event_at")


def status_event_warehouse(shipment: str) -> str:
    """SQL (a scalar subquery) of the warehouse of `shipment`'s status event, read from the
    event in its month: for a row whose Shipment.status_warehouse is not recorded."""
    return (
        "(SELECT sw.warehouse_id FROM shipments_trackingevent sw"
        f" WHERE sw.id = {shipment}.status_event_id"
        f" AND {status_event_at(shipment, 'sw.occurred_at')})"
    )


def status_event_in_month() -> FilteredRelation:
    """The ORM's join of the status event with `status_event_at` (the rule above), for
    `.annotate(status_event_in_month=...)`: select_related() or values() through it read one
    month's primary key. A row loads it as `status_event_in_month` (see status_event_of)."""
    lo = Coalesce(F("status_event_at"), Value(datetime.min.replace(tzinfo=UTC)))
    hi = Coalesce(F("status_event_at"), Value(datetime.max.replace(tzinfo=UTC)))
    return FilteredRelation(
        "status_event",
        condition=Q(status_event__occurred_at__gte=lo, status_event__occurred_at__lte=hi),
    )


def status_event_of(shipment: Shipment) -> TrackingEvent | None:
    """The shipment's status event: the one selected through status_event_in_month when it was,
    else (not selected, or its time not as recorded: correct rather than fast) by id."""
    if shipment.status_event_id is None:
        return None
    selected: TrackingEvent | None = getattr(shipment, "status_event_in_month", None)
    return selected if selected is not None else shipment.status_event
