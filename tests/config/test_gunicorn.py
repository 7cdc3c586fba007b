"""The production gunicorn settings: warm workers freeze their long-lived objects."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import gunicorn as settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(settings, "_served", 0)
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_worker_freezes_what_it_holds_once_warm_and_only_once(fresh_worker: None) -> None:
    for _ in range(settings.WARM_REQUESTS - 1):
        settings.post_request(None, None, None, None)
    assert gc.get_freeze_count() == 0
    settings.post_request(None, None, None, None)
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # Django, DRF and the app's modules
    # Objects made after that are collected as usual, never frozen.
    later = [[] for _ in range(1000)]
    for _ in range(50):
        settings.post_request(None, None, None, None)
    assert gc.get_freeze_count() == frozen
    del later


def test_gunicorn_accepts_the_settings_file() -> None:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    result = subprocess.run(
        [str(gunicorn), "--check-config", "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
