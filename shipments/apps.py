from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.urls import register_converter


class ShipmentsConfig(AppConfig):
    name = "shipments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shipments.converters import TrackingNumberConverter

        # Before any URLconf is loaded: both the API's and the buyers' page's use it.
        register_converter(TrackingNumberConverter, "tracking_number")
        post_migrate.connect(_event_partitions_ensure, sender=self)


def _event_partitions_ensure(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """Every `migrate` (so every deploy) creates the events' partitions ahead, as the daily
    beat task does: a deploy after a long pause never leaves the ingest writing to DEFAULT."""
    if using != DEFAULT_DB_ALIAS:
        return
    from shipments.partitions import partitions_ensure

    partitions_ensure()
