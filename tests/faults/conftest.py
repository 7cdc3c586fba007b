"""The fault suite's fixtures: disposable services per session, a hub per scenario, the table.

One PostgreSQL and one Redis serve the whole session (scenarios that kill them restart them);
each scenario gets a fresh database cloned from a migrated template, an emptied Redis and its
own processes. Each scenario records one table row per behaviour; the table is printed at the
end of the run and written to .local/faults-table.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.faults.hub import ROOT, Hub
from tests.faults.services import Postgres, Redis

TEMPLATE = "faults_template"
TABLE_FILE = ROOT / ".local" / "faults-table.md"


@dataclass
class Row:
    scenario: str
    expected: int
    stored: int
    duplicated: int
    recovered: float | None
    note: str = ""

    @property
    def lost(self) -> int:
        return max(self.expected - self.stored, 0)


ROWS: list[Row] = []
_ACTIVE: list[Hub] = []
_CREATED: list[str] = []


def record(
    scenario: str,
    *,
    expected: int,
    stored: int,
    duplicated: int,
    recovered: float | None,
    note: str = "",
) -> Row:
    """Keep a scenario's figures for the table (before its assertions, so failures show too)."""
    row = Row(scenario, expected, stored, duplicated, recovered, note)
    ROWS[:] = [r for r in ROWS if r.scenario != scenario]
    ROWS.append(row)
    return row


@dataclass
class Services:
    root: Path
    postgres: Postgres
    redis: Redis


@pytest.fixture(scope="session")
def fault_services() -> Iterator[Services]:
    root = Path(tempfile.mkdtemp(prefix="hub-faults-"))
    # PostgreSQL runs as pgserver's system user when we are root: it must reach its data.
    root.chmod(0o755)
    postgres = redis = None
    try:
        postgres = Postgres(root / "services")
        redis = Redis(root / "services")
        postgres.execute(f'CREATE DATABASE "{TEMPLATE}"')
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": postgres.url(TEMPLATE),
            "REDIS_URL": redis.url(),
        }
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr.decode()[-3000:]
        yield Services(root, postgres, redis)
    finally:
        if redis:
            redis.stop()
        if postgres:
            postgres.stop()
        if not os.environ.get("FAULTS_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _hubs(services: Services) -> Iterator[Callable[[str], Hub]]:
    hubs: list[Hub] = []

    def make(name: str) -> Hub:
        hub = Hub(
            name=name,
            postgres=services.postgres,
            redis=services.redis,
            redis_db=1 + len(_CREATED) % 15,
            root=services.root / name,
            template=TEMPLATE,
        )
        hubs.append(hub)
        _ACTIVE.append(hub)
        _CREATED.append(name)
        return hub

    try:
        yield make
    finally:
        for hub in hubs:
            hub.stop_all()
            _ACTIVE.remove(hub)


@pytest.fixture
def make_hub(fault_services: Services) -> Iterator[Callable[[str], Hub]]:
    """A scenario's hub; its processes are stopped when the test ends."""
    with _hubs(fault_services) as make:
        yield make


@pytest.fixture(scope="module")
def make_module_hub(fault_services: Services) -> Iterator[Callable[[str], Hub]]:
    """For one scenario run once and checked by several tests of a module."""
    with _hubs(fault_services) as make:
        yield make


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: kills and restarts real processes (tests/faults, docs/faults.md)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ACTIVE and "faults" in item.keywords:
        for hub in _ACTIVE:
            report.sections.append((f"logs of {hub.name}", hub.log_tails()))


def _table() -> str:
    lines = [
        "| scenario | expected | stored | lost | duplicated | recovered in s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in ROWS:
        recovered = "—" if row.recovered is None else f"{row.recovered:.1f}"
        name = f"{row.scenario} ({row.note})" if row.note else row.scenario
        lines.append(
            f"| {name} | {row.expected} | {row.stored} | {row.lost} | {row.duplicated} "
            f"| {recovered} |"
        )
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    table = _table()
    terminalreporter.section("fault suite")
    terminalreporter.write(table)
    TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    TABLE_FILE.write_text(table)
    terminalreporter.write_line(f"(written to {TABLE_FILE.relative_to(ROOT)})")
