"""The city and country a place code names, for what a buyer sees (readers/tracking_page.py).

The gazetteer lives in warehouses, which shipments may not import (the apps stand in layers:
warehouses -> shipments). So warehouses hands its lookup in when the app registry is ready
(warehouses/apps.py); until then, or for a code it does not know, a place has no city and the page
shows the event's country alone. A free-text place name is never a fallback: warehouses write
consignees' names and street addresses into it.
"""

from __future__ import annotations

from collections.abc import Callable

# code -> (city, ISO 3166 alpha-2 country), or None for a code the gazetteer does not know.
PlaceNamer = Callable[[str], tuple[str, str] | None]

_namer: PlaceNamer | None = None


def place_namer_register(namer: PlaceNamer | None) -> None:
    global _namer
    _namer = namer


def place_of_code(code: str) -> tuple[str, str] | None:
    """(city, country) of a UN/LOCODE or IATA airport code; None when unknown or unwired."""
    code = code.strip().upper()
    if not code or _namer is None:
        return None
    return _namer(code)
