"""Fixtures for the intake tests: running `manage.py ingest` on small files we write."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.conftest import WarehouseFactory
from warehouses.models import Warehouse

IngestCli = Callable[..., dict[str, Any]]


@pytest.fixture
def warehouse(db: None) -> Warehouse:
    return WarehouseFactory(code="heihe-bonded")


@pytest.fixture
def ingest_cli(warehouse: Warehouse, tmp_path: Path) -> IngestCli:
    """Write `payload` to a file, run `manage.py ingest FILE --json ...`, return its JSON."""

    def run(payload: bytes, *args: str, name: str = "upload.dat") -> dict[str, Any]:
        path = tmp_path / name
        path.write_bytes(payload)
        out = io.StringIO()
        call_command(
            "ingest", str(path), "--warehouse", warehouse.code, "--json", *args, stdout=out
        )
        result: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
        return result

    return run
