"""The production gunicorn settings: warm workers freeze their long-lived objects, and a long
streamed response is not cut off at the timeout."""

from __future__ import annotations

import gc
import http.client
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import gunicorn as settings
from tests.config import slow_wsgi
from tests.deploy.servers import free_port, wait_listening

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


def _stream_through_gunicorn(settings_file: str) -> bytes:
    """What a client receives of tests/config/slow_wsgi.py (8 s of chunks) from gunicorn run with
    `settings_file` and a 3 s timeout."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "-c", settings_file, "--bind", f"127.0.0.1:{port}"]
    # Not a 1 s timeout: a gthread worker tells the arbiter it is alive once per turn of its loop,
    # and a turn waits up to 1 s for events, so a 1 s timeout kills a healthy worker whenever the
    # machine is busy (seen in CI). 3 s leaves it two turns of margin; the stream still outlasts
    # the timeout by more than twice.
    command += ["--workers", "1", "--timeout", "3", "tests.config.slow_wsgi:application"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, process, "gunicorn")
        received = b""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as answer:
                while chunk := answer.read(64):
                    received += chunk
        except (http.client.IncompleteRead, ConnectionError) as cut:
            received += getattr(cut, "partial", b"")
        return received
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_response_streamed_for_longer_than_the_timeout_is_not_cut_off() -> None:
    # A million-row export streams for minutes (docs/exports.md); the worker must live through it.
    received = _stream_through_gunicorn("config/gunicorn.py")
    assert received.decode().splitlines() == [f"chunk {n}" for n in range(slow_wsgi.CHUNKS)]


def test_a_sync_worker_would_cut_it_off() -> None:
    # Why the settings file chooses threads: gunicorn's default (sync) worker is killed mid-stream.
    # (Without a settings file: the file's worker_class wins over --worker-class.)
    received = _stream_through_gunicorn("/dev/null")
    assert len(received.decode().splitlines()) < slow_wsgi.CHUNKS
