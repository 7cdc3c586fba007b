"""Environment readers: a value that is neither a known word nor a number stops the start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    database_behind_pooler,
    database_from_url,
    database_pooler,
    database_replica,
    envbool,
    envfloat,
    envint,
    envint_or_none,
    envjson_object,
)

ROOT = Path(__file__).resolve().parents[2]
VAR = "HUB_TEST_ENV_READER"


@pytest.mark.parametrize(
    "value", ["1", "true", "TRUE", "True", "yes", "Yes", "on", "ON", " true ", "\tyes\n"]
)
def test_a_true_word_in_any_case_and_with_blanks_around_is_true(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    assert envbool(VAR, False) is True


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "no", "No", "off", "Off", " 0 "])
def test_a_false_word_in_any_case_and_with_blanks_around_is_false(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    assert envbool(VAR, True) is False


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_or_blank_value_means_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    assert envbool(VAR, True) is True
    assert envbool(VAR, False) is False
    assert envint(VAR, 7) == 7
    assert envfloat(VAR, 2.5) == 2.5


def test_an_unset_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert envbool(VAR, True) is True
    assert envint(VAR, 7) == 7
    assert envfloat(VAR, 2.5) == 2.5


@pytest.mark.parametrize("value", ["maybe", "flase", "2", "y", "enabled", "-1"])
def test_any_other_boolean_is_an_error_naming_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ImproperlyConfigured) as raised:
        envbool(VAR, False)
    assert f"{VAR}={value!r} is not a boolean" in str(raised.value)


@pytest.mark.parametrize(("value", "expected"), [("42", 42), (" 42 ", 42), ("-3", -3), ("0", 0)])
def test_an_integer_is_read_with_blanks_around(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setenv(VAR, value)
    assert envint(VAR, 7) == expected


@pytest.mark.parametrize("value", ["20k", "1.5", "ten", "0x10"])
def test_a_non_integer_is_an_error_naming_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ImproperlyConfigured) as raised:
        envint(VAR, 7)
    assert f"{VAR}={value!r} is not an integer" in str(raised.value)


def test_a_number_reads_decimals_and_a_non_number_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VAR, "2.5")
    assert envfloat(VAR, 10.0) == 2.5
    monkeypatch.setenv(VAR, "3s")
    with pytest.raises(ImproperlyConfigured) as raised:
        envfloat(VAR, 10.0)
    assert f"{VAR}='3s' is not a number" in str(raised.value)


def _manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"INGEST_BATCH_SIZE": "20k"}, "INGEST_BATCH_SIZE='20k' is not an integer"),
    ],
)
def test_start_up_fails_on_an_unreadable_value_and_says_which(
    env: dict[str, str], message: str
) -> None:
    result = _manage_check(**env)
    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: Environment variable {message}" in (
        result.stderr
    )


def test_start_up_accepts_the_same_variables_spelled_as_words() -> None:
    result = _manage_check(DEBUG=" Off ", INGEST_BATCH_SIZE=" 5000 ")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_database_pooler_knows_pgbouncer_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VAR, " PgBouncer ")
    assert database_pooler(VAR) == "pgbouncer"
    monkeypatch.setenv(VAR, "")
    assert database_pooler(VAR) == ""
    monkeypatch.setenv(VAR, "pgpool")
    with pytest.raises(ImproperlyConfigured, match="pgpool"):
        database_pooler(VAR)


def test_behind_a_pooler_no_session_state_is_asked_for() -> None:
    direct = database_from_url("postgres://u@db:6432/hub?prepare_threshold=5&sslmode=require")
    direct["OPTIONS"]["options"] = "-c jit=off"  # type: ignore[index]
    pooled = database_behind_pooler(direct)
    assert pooled["OPTIONS"] == {"prepare_threshold": None, "sslmode": "require"}
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert direct["OPTIONS"]["prepare_threshold"] == "5"  # type: ignore[index]


def test_an_optional_integer_is_none_when_unset_or_blank_and_refuses_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert envint_or_none(VAR) is None
    monkeypatch.setenv(VAR, "  ")
    assert envint_or_none(VAR) is None
    monkeypatch.setenv(VAR, " 400 ")
    assert envint_or_none(VAR) == 400
    monkeypatch.setenv(VAR, "a year")
    with pytest.raises(ImproperlyConfigured, match="'a year' is not an integer"):
        envint_or_none(VAR)


def test_a_json_object_reader_refuses_json_that_is_not_an_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VAR, '{"bucket_name": "archive"}')
    assert envjson_object(VAR) == {"bucket_name": "archive"}
    monkeypatch.setenv(VAR, "")
    assert envjson_object(VAR) == {}
    for value in ('["archive"]', "{bucket_name: archive}"):
        monkeypatch.setenv(VAR, value)
        with pytest.raises(ImproperlyConfigured, match="is not a JSON object"):
            envjson_object(VAR)


def test_retention_inside_the_statistics_windows_stops_the_start_up() -> None:
    # 180 days of statistics (the default windows) would lose parcels removed after 100.
    result = _manage_check(RETENTION_DAYS="100")
    assert result.returncode != 0
    assert "RETENTION_DAYS=100 must exceed the statistics windows" in result.stderr
    assert _manage_check(RETENTION_DAYS="365").returncode == 0


def test_a_replica_has_the_primary_s_settings_and_its_own_address() -> None:
    primary = database_from_url("postgres://hub:pw@db:5432/hub?sslmode=require")
    primary["OPTIONS"]["options"] = "-c jit=off"  # type: ignore[index]
    primary["CONN_MAX_AGE"] = 60
    replica = database_replica(primary, "postgres://reader:rpw@db-replica:5433/hub")
    assert {k: replica[k] for k in ("HOST", "PORT", "USER", "PASSWORD", "NAME")} == {
        "HOST": "db-replica",
        "PORT": "5433",
        "USER": "reader",
        "PASSWORD": "rpw",
        "NAME": "hub",
    }
    assert replica["CONN_MAX_AGE"] == 60
    assert replica["OPTIONS"] == {
        "sslmode": "require",
        "options": "-c jit=off",
        "connect_timeout": 2,
    }
    assert replica["TEST"] == {"MIRROR": "default"}
    # The URL's own options win, a connect timeout included.
    slow = database_replica(primary, "postgres://r@db-replica/hub?connect_timeout=9&sslmode=off")
    assert slow["OPTIONS"] == {"sslmode": "off", "options": "-c jit=off", "connect_timeout": "9"}


_SHOW_DATABASES = (
    "import django; django.setup(); "
    "from django.conf import settings as s; from django.db import router; "
    "print(sorted(s.DATABASES), s.DATABASE_ROUTERS, len(router.routers), "
    "[e['OPTIONS'].get('prepare_threshold', '-') for e in s.DATABASES.values()])"
)


def _show_databases(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _SHOW_DATABASES],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_a_replica_url_there_is_one_database_and_no_router() -> None:
    assert _show_databases() == "['default'] [] 0 ['-']"


def test_a_replica_url_adds_the_replica_and_the_router_behind_the_same_pooler() -> None:
    shown = _show_databases(
        DATABASE_REPLICA_URL="postgres://hub@db-replica:6432/hub", DATABASE_POOLER="pgbouncer"
    )
    assert shown == "['default', 'replica'] ['config.replica.PrimaryReplicaRouter'] 1 [None, None]"
