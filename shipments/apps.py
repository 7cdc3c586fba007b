from django.apps import AppConfig
from django.urls import register_converter


class ShipmentsConfig(AppConfig):
    name = "shipments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shipments.converters import TrackingNumberConverter

        # Before any URLconf is loaded: both the API's and the buyers' page's use it.
        register_converter(TrackingNumberConverter, "tracking_number")
