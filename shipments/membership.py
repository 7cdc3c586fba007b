"""The one rule for "a parcel is inside a transport unit at instant t", as a SQL fragment.

A membership holds its parcel from `loaded_at` up to and including `unloaded_at` (open while
NULL). The unload instant counts as inside: a unit's event stamped at the moment a parcel is
taken off still happened to that parcel (the unload scan and the unit's arrival share a time).
Every statement that follows a unit's events to its parcels (the recorder, the estimates, the
timeline, retractions) uses this fragment, so they cannot disagree about that instant.
"""

from __future__ import annotations


def inside_unit(membership: str, at: str) -> str:
    """SQL true when `membership` (a shipments_unitmembership alias) holds its parcel at `at`.

    Both arguments are SQL expressions written by this code base, never user input.
    """
    return (
        f"({membership}.loaded_at <= {at}"
        f" AND ({membership}.unloaded_at IS NULL OR {at} <= {membership}.unloaded_at))"
    )
