from django.apps import AppConfig
from django.core import checks


class WarehousesConfig(AppConfig):
    name = "warehouses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from warehouses.checks import epcis_schema_check

        checks.register(epcis_schema_check)
