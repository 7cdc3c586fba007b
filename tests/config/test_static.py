"""Static files in production: the image's collectstatic, then gunicorn with DEBUG off serves them
(WhiteNoise) — the admin, the dashboard and the app's scripts keep their CSS and JS."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """What the Dockerfile and docker-compose run: collectstatic, then gunicorn, DEBUG off."""
    static_root = tmp_path_factory.mktemp("static")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "STATIC_ROOT": str(static_root),
        "SECRET_KEY": "static-files-test-" + "x" * 40,
        # Plain HTTP on the loopback (no redirect to HTTPS).
        "HTTPS": "0",
    }
    subprocess.run(
        [str(BIN / "python"), "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    port = _free_port()
    log = static_root.parent / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.py",
                "--bind", f"127.0.0.1:{port}", "--workers", "1",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                requests.get(f"{base}/track/", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):  # still booting
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_the_admin_login_page_and_its_css_are_served(production_server: str) -> None:
    page = requests.get(f"{production_server}/admin/login/", timeout=10)
    assert page.status_code == 200
    assets = _assets(page.text)
    assert "/static/admin/css/base.css" in assets
    for asset in assets:
        response = requests.get(production_server + asset, timeout=10)
        assert response.status_code == 200, asset
    css = requests.get(f"{production_server}/static/admin/css/base.css", timeout=10)
    assert css.headers["Content-Type"].startswith("text/css")
    assert "body" in css.text
    # collectstatic wrote compressed copies; WhiteNoise serves them to clients that accept them.
    gzipped = requests.get(
        f"{production_server}/static/admin/css/base.css",
        headers={"Accept-Encoding": "gzip"},
        timeout=10,
    )
    assert gzipped.headers.get("Content-Encoding") == "gzip"


def test_the_apps_own_assets_are_served(production_server: str) -> None:
    # The feed run page's progress script (warehouses/static), collected with the admin's.
    script = requests.get(f"{production_server}/static/warehouses/run_progress.js", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    # The buyers' tracking page carries its styles inline; whatever static asset it names, if
    # any, is served.
    page = requests.get(f"{production_server}/track/", timeout=10)
    assert page.status_code == 200
    for asset in _assets(page.text):
        assert requests.get(production_server + asset, timeout=10).status_code == 200, asset


def test_an_unknown_static_file_is_a_404(production_server: str) -> None:
    response = requests.get(f"{production_server}/static/admin/css/no-such.css", timeout=10)
    assert response.status_code == 404
