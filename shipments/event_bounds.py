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


def _between(at: str, low: str, high: str) -> str:
    return (
        f"{at} BETWEEN coalesce({low}, '-infinity'::timestamptz)"
        f" AND coalesce({high}, 'infinity'::timestamptz)"
    )


def own_events_within(shipment: str, at: str) -> str:
    """SQL true for an own event of `shipment` (a shipments_shipment alias) whose `at` (its
    occurred_at) lies within the shipment's bounds, which every own event does."""
    return _between(at, f"{shipment}.first_event_at", f"{shipment}.last_event_at")


def status_event_at(shipment: str, at: str) -> str:
    """SQL true when `at` (an event's occurred_at) may be that of `shipment`'s status event:
    add it to a join on `id = shipment.status_event_id`."""
    return _between(at, f"{shipment}.status_event_at", f"{shipment}.status_event_at")
