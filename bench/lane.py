"""The ten events of a Heihe → Moscow parcel by rail that the benchmarks store set-based
(bench/api.py, bench/scale.py): one copy, written into their SQL as a VALUES list."""

from __future__ import annotations

# (code, status, stage, place, UN/LOCODE, country), in the order they happen.
LANE = (
    ("info_received", "info_received", "first_mile", "Heihe", "CNHEK", "CN"),
    ("warehouse_received", "in_transit", "first_mile", "Heihe bonded", "CNHEK", "CN"),
    ("warehouse_dispatched", "in_transit", "first_mile", "Heihe bonded", "CNHEK", "CN"),
    ("customs_export_submitted", "in_transit", "export_customs", "Heihe", "CNHEK", "CN"),
    ("customs_export_cleared", "in_transit", "export_customs", "Heihe", "CNHEK", "CN"),
    ("departed", "in_transit", "line_haul", "Suifenhe", "CNSFH", "CN"),
    ("border_crossed", "in_transit", "line_haul", "Pogranichny", "RUPGS", "RU"),
    ("arrived", "in_transit", "line_haul", "Blagoveshchensk", "RUBQS", "RU"),
    ("customs_import_cleared", "in_transit", "import_customs", "Blagoveshchensk", "RUBQS", "RU"),
    ("out_for_delivery", "out_for_delivery", "last_mile", "Moscow", "RUMOW", "RU"),
)


def lane_values(first: int) -> str:
    """The rows of `(VALUES ...) AS c(step, code, status, stage, place, locode, country)`, the
    steps numbered from `first` (no quotes or % signs in the values, so it can go into SQL that
    is formatted with psycopg's parameters)."""
    return ",\n".join(
        "    ({}, {})".format(first + n, ", ".join(f"'{v}'" for v in event))
        for n, event in enumerate(LANE)
    )
