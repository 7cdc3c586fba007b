from django.apps import AppConfig
from django.core import checks


class WarehousesConfig(AppConfig):
    name = "warehouses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shipments.readers.place_names import place_namer_register
        from warehouses.checks import epcis_schema_check
        from warehouses.normalize.places import code_place

        checks.register(epcis_schema_check)
        # The buyers' page names places from their codes through the gazetteer, which shipments
        # cannot import (shipments/readers/place_names.py).
        place_namer_register(code_place)
