"""Typed readers for environment variables (every setting is read from the environment).

A value a reader cannot read stops the start-up with ImproperlyConfigured naming the variable
and the value: `DEBUG=flase` silently meaning "off", or `INGEST_BATCH_SIZE=20k` surfacing as a
bare ValueError from deep inside the settings, would hide a typo until it mattered. An empty
(or blank) value means the default, so `FOO=` in an env file is the same as no `FOO` at all.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _set_value(name: str) -> str | None:
    """The variable's value trimmed, or None when it is unset or blank (the default applies)."""
    value = os.environ.get(name, "").strip()
    return value or None


def _unreadable(name: str, kind: str, default: object) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"Environment variable {name}={os.environ.get(name)!r} is not {kind} "
        f"(leave it empty for the default, {default!r})."
    )


def envbool(name: str, default: bool = False) -> bool:
    """1/0, true/false, yes/no, on/off in any case; anything else is an error, not False."""
    value = _set_value(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise _unreadable(name, "a boolean: use 1/0, true/false, yes/no or on/off", default)


def envint(name: str, default: int) -> int:
    value = _set_value(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _unreadable(name, "an integer", default) from None


def envint_or_none(name: str) -> int | None:
    """An integer, or None when the variable is unset or blank (a feature that is off)."""
    value = _set_value(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise _unreadable(name, "an integer", None) from None


def envjson_object(name: str) -> dict[str, object]:
    """A JSON object (a backend's options, say); {} when unset or blank."""
    value = _set_value(name)
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        raise _unreadable(name, "a JSON object", {}) from None
    if not isinstance(parsed, dict):
        raise _unreadable(name, "a JSON object", {})
    return parsed


def envfloat(name: str, default: float) -> float:
    value = _set_value(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise _unreadable(name, "a number", default) from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, object]:
    """postgres://user:pass@host:port/name?options -> a Django DATABASES entry.

    A unix socket directory can be given as `?host=/path` (pgserver hands out such URLs).
    """
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, got {parsed.scheme!r}")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = query.pop("host", "") or unquote(parsed.hostname or "")
    return {
        "ENGINE": "config.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or "postgres"),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": query,
    }


POOLERS = frozenset({"pgbouncer"})


def database_pooler(name: str = "DATABASE_POOLER") -> str:
    """The pooler between the hub and PostgreSQL ("pgbouncer" in transaction mode), or ""."""
    value = (_set_value(name) or "").lower()
    if value and value not in POOLERS:
        raise _unreadable(name, f"one of {sorted(POOLERS)} (or empty: a direct connection)", "")
    return value


def database_behind_pooler(entry: dict[str, object]) -> dict[str, object]:
    """A DATABASES entry made safe behind a pooler in transaction mode (see docs/scaling.md).

    Each transaction may run on a different server session, so nothing may outlive one:
    - no startup `options` (PgBouncer refuses the parameter; set such flags on the server);
    - no prepared statements (PgBouncer before 1.21 does not track them): psycopg's automatic
      preparation stays off whatever the URL says;
    - no server-side cursors (`.iterator()` would DECLARE on one session and FETCH on another).
    The feed lock (warehouses/ingest/runs.py) and `config.db.prepared_cursor` read the
    DATABASE_POOLER setting themselves.
    """
    options = dict(entry.get("OPTIONS") or {})  # type: ignore[call-overload]
    options.pop("options", None)
    options["prepare_threshold"] = None
    return {**entry, "OPTIONS": options, "DISABLE_SERVER_SIDE_CURSORS": True}


def database_replica(primary: dict[str, object], url: str) -> dict[str, object]:
    """The DATABASES entry of a streaming replica (DATABASE_REPLICA_URL): the primary's entry
    (connection age, health checks, session flags and so on) with the replica's address,
    credentials and URL options, before any pooler adjustment (apply that to both).

    - A connect timeout (2 s unless the URL sets one): an unreachable replica must cost a
      request a moment, not the operating system's minute, before it is read from the primary.
    - As a test mirror of the primary: a test run with the variable set creates no database on
      the replica (which is read-only) and reads the primary's test database through it.
    """
    replica = database_from_url(url)
    options = {**dict(primary.get("OPTIONS") or {}), **dict(replica["OPTIONS"])}  # type: ignore[call-overload]
    options.setdefault("connect_timeout", 2)
    return {
        **primary,
        **{key: replica[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
        "OPTIONS": options,
        "TEST": {**dict(primary.get("TEST") or {}), "MIRROR": "default"},  # type: ignore[call-overload]
    }
