"""Production settings: `check --deploy` is clean with a production environment, the web and Celery
processes refuse the development SECRET_KEY with DEBUG off, and the HTTPS settings follow the
environment."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.test import Client

from config.security import insecure_start_reason

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Everything these tests set themselves; inherited values would change what they check (the
# browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process, which check --deploy refuses).
OWN = (
    "DJANGO_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "HTTPS", "SECURE_",
    "TRUSTED_PROXIES",
)  # fmt: skip


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN)}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="hub.example.com",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run(
    args: list[str], env: dict[str, str], timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = run(
        [str(BIN / "python"), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


SETTINGS_DUMP = """
import django, json
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in (
    "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
    "TRUSTED_PROXIES", "MESSAGE_STORAGE")}))
"""


def settings_under(env: dict[str, str]) -> dict[str, Any]:
    result = run([str(BIN / "python"), "-c", SETTINGS_DUMP], env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_https_is_the_default_with_debug_off() -> None:
    values = settings_under(production_env())
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "TRUSTED_PROXIES": [],
        "MESSAGE_STORAGE": "django.contrib.messages.storage.session.SessionStorage",
    }


def test_each_value_comes_from_the_environment() -> None:
    plain = settings_under(production_env(HTTPS="0"))
    assert (plain["SECURE_SSL_REDIRECT"], plain["SESSION_COOKIE_SECURE"]) == (False, False)
    assert plain["SECURE_HSTS_SECONDS"] == 0
    behind_proxy = settings_under(
        production_env(
            SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
            TRUSTED_PROXIES="10.0.0.0/8, 172.16.0.0/12",
            SECURE_HSTS_SECONDS="3600",
            SECURE_HSTS_PRELOAD="1",
            SECURE_SSL_REDIRECT="0",
        )
    )
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind_proxy["TRUSTED_PROXIES"] == ["10.0.0.0/8", "172.16.0.0/12"]
    assert behind_proxy["SECURE_HSTS_SECONDS"] == 3600
    assert behind_proxy["SECURE_HSTS_PRELOAD"] is True
    assert behind_proxy["SECURE_SSL_REDIRECT"] is False
    assert behind_proxy["SESSION_COOKIE_SECURE"] is True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_refuses_to_start_without_a_key_when_debug_is_off() -> None:
    env = production_env()
    env.pop("SECRET_KEY")
    result = run(
        [
            str(BIN / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.py",
            "--bind", f"127.0.0.1:{_free_port()}", "--workers", "1",
        ],
        env,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SECRET_KEY is not set (or is a published placeholder) and DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    ("key", "debug", "refused"),
    [
        ("dev-only-insecure-key-change-me", False, True),
        ("change-me-in-production", False, True),
        ("dev-only-insecure-key-change-me", True, False),  # a development machine
        ("a-real-key-" + "q" * 50, False, False),
    ],
)
def test_which_keys_are_refused(key: str, debug: bool, refused: bool, settings: Any) -> None:
    settings.SECRET_KEY, settings.DEBUG = key, debug
    assert (insecure_start_reason() is not None) == refused


@pytest.mark.parametrize("command", [["worker", "--pool", "solo"], ["beat"]])
def test_celery_refuses_to_start_with_the_development_key_and_debug_off(
    command: list[str], tmp_path: Path, db: None
) -> None:
    # Beat reads its schedule from the database before its start-up signal, so it needs one
    # that exists: the test database (DATABASE_URL names a database CI never creates).
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub"))
    test_url = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    env = production_env(DATABASE_URL=test_url)
    env.pop("SECRET_KEY")
    extra = ["-s", str(tmp_path / "beat-schedule")] if command == ["beat"] else []
    result = run([str(BIN / "celery"), "-A", "config", *command, *extra], env, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "SECRET_KEY is not set (or is a published placeholder) and DEBUG is off" in output


@pytest.mark.django_db
def test_plain_http_is_redirected_except_health_checks_and_what_the_proxy_says_is_https(
    settings: Any,
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    response = client.get("/track/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/track/"
    assert client.get("/healthz").status_code == 200
    assert client.get("/track/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
