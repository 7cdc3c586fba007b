"""Re-import a retention file (docs/retention.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations.retention.archive import ArchiveError, retention_storage
from operations.retention.importing import retention_import


class Command(BaseCommand):
    help = (
        "Bring the parcels of a retention file back into the database. FILE is a local path, "
        "or a name in the retention storage (shipments-2025-10.jsonl.gz). Parcels already "
        "present are left alone, so importing twice adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        storage: Storage
        if path.is_file():
            storage, name = FileSystemStorage(location=path.resolve().parent), path.name
        else:
            storage, name = retention_storage(), options["file"]
            if not storage.exists(name):
                raise CommandError(f"{name}: neither a local file nor in the retention storage")
        try:
            result = retention_import(name, storage=storage)
        except ArchiveError as exc:
            raise CommandError(f"nothing imported: {exc}") from exc
        self.stdout.write(
            f"{name}: {result.shipments} parcels, {result.imported} imported, "
            f"{result.already_present} already present; {result.units} units, "
            f"{result.units_imported} imported"
        )
