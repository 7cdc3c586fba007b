"""Startup checks of the warehouses app (run by `manage.py check`, runserver, migrate, workers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error


def epcis_schema_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """EPCIS events are validated against the official schema shipped in the package; an
    installation without it must not start and accept them unvalidated."""
    try:
        from warehouses.parsers import epcis

        epcis.load_validator()
    except RuntimeError as exc:
        return [Error(str(exc), hint="reinstall the package", id="warehouses.E001")]
    return []
