"""Reads from a PostgreSQL streaming replica (DATABASE_REPLICA_URL), opted into per view.

Everything goes to the primary ("default") unless a view opts in with `reads_from_replica()`
(or the `replica_reads` decorator): the shops' GET endpoints, the buyers' tracking page and
the operations dashboard. Workers, ingest, the admin's own pages and every write never do,
and a read inside a transaction on the primary stays on it (it may read what that transaction
wrote). Without DATABASE_REPLICA_URL no router is installed and the middleware removes itself.

Read-your-writes: after a client's unsafe request (POST/PUT/PATCH/DELETE: a shop's API call,
a claim, an operator's admin change) `ReadYourWritesMiddleware` stores the primary's WAL
position in Redis under the client (its Authorization header or its session, hashed). The
client's reads go to the replica only once the replica has replayed past that position; the
comparison is exact (LSNs), not a guess by time. The replica is also skipped when it is
unreachable (for DATABASE_REPLICA_RETRY_SECONDS), or when its replay lags by more than
DATABASE_REPLICA_MAX_LAG seconds: the request is then served by the primary, not failed.
docs/scaling.md ("Reads from a streaming replica") has the whole picture.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Where this context's opted-in reads go (None: the primary). Set only by reads_from_replica().
_reads: ContextVar[str | None] = ContextVar("hub_replica_reads", default=None)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def read_alias() -> str:
    """The database this context's reads go to: the replica inside `reads_from_replica()` when
    it was found usable, unless a transaction is open on the primary (what it wrote, and the
    rows it locked, are only there)."""
    alias = _reads.get()
    if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return alias


class PrimaryReplicaRouter:
    """Installed only with DATABASE_REPLICA_URL. Writes, migrations and every read outside
    `reads_from_replica()` go to the primary; returning "default" rather than None keeps an
    object read from the replica from pulling its later related reads there."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two servers

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


# --- the replica's state --------------------------------------------------------------------

# Replay position (bytes since 0/0) and lag in seconds. The lag is zero while the WAL receiver
# streams and has replayed all it received; otherwise (replay paused or behind, or the stream
# broken) it is the age of the last replayed commit, which only grows. A server that is not in
# recovery (DATABASE_REPLICA_URL naming a primary) is never behind. The receiver's status is
# shown only to roles with pg_read_all_stats; others see its process, taken as streaming.
_STATUS_SQL = """
SELECT pg_is_in_recovery(),
       coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint, 0),
       CASE
           WHEN NOT pg_is_in_recovery() THEN 0
           WHEN EXISTS (
                    SELECT 1 FROM pg_stat_wal_receiver
                    WHERE coalesce(status, 'streaming') = 'streaming'
                )
                AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
           ELSE coalesce(
               extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
               'Infinity'::float8)
       END
"""
_WRITTEN_SQL = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    checked_at: float
    up: bool
    in_recovery: bool = False
    replayed: int = 0  # bytes of WAL replayed
    lag: float = 0.0  # seconds

    def has_replayed(self, position: int) -> bool:
        return not self.in_recovery or self.replayed >= position


class _Status:
    """The last check of the replica, shared by this process's threads for
    DATABASE_REPLICA_CHECK_SECONDS (a failed one for DATABASE_REPLICA_RETRY_SECONDS): a
    request pays one small query at most that often, and an unreachable replica costs one
    connection attempt per period, not one per request."""

    def __init__(self) -> None:
        self._last: ReplicaStatus | None = None
        self._lock = threading.Lock()

    def forget(self) -> None:
        self._last = None

    def get(self, *, fresh: bool = False) -> ReplicaStatus:
        now = time.monotonic()
        last = self._last
        if last is not None:
            period = (
                settings.DATABASE_REPLICA_CHECK_SECONDS
                if last.up
                else settings.DATABASE_REPLICA_RETRY_SECONDS
            )
            if now - last.checked_at < period and not (fresh and last.up):
                return last
        status = _check(now)
        with self._lock:
            self._last = status
        return status


def _check(now: float) -> ReplicaStatus:
    replica = connections[REPLICA]
    try:
        with replica.cursor() as cursor:
            cursor.execute(_STATUS_SQL)
            in_recovery, replayed, lag = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Replica unavailable, reading from the primary: %s", exc)
        replica.close()  # a half-open connection must not be reused for the reads
        return ReplicaStatus(checked_at=now, up=False)
    return ReplicaStatus(now, True, bool(in_recovery), int(replayed), float(lag))


replica_status = _Status()


# --- clients and their last writes ----------------------------------------------------------


@functools.cache
def _redis() -> redis.Redis:
    # Short timeouts: Redis being slow must cost a read its replica, not the request its time.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


def client_of(request: HttpRequest, *, after_response: bool = False) -> str | None:
    """Who is asking, for read-your-writes: its credential (an API key), else its session
    (an operator), hashed (Redis must not hold credentials). None: an anonymous client, which
    writes nothing (the buyers' page)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        return "auth:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    session_key = None
    if after_response:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # wrote nothing: an anonymous form (a failed login) or a refusal
        # A login has just replaced the session: the client's next request carries the new one.
        session_key = request.session.session_key
    session_key = session_key or request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if session_key:
        return "session:" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
    return None


def _written_key(client: str) -> str:
    return f"hub:replica:written:{client}"


def write_noted(client: str) -> None:
    """Remember the primary's WAL position now (after the client's write committed) for
    DATABASE_REPLICA_WRITE_TTL seconds. A failure is logged: the write itself stands."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(_WRITTEN_SQL)
            position = int(cursor.fetchone()[0])
        _redis().set(_written_key(client), position, ex=settings.DATABASE_REPLICA_WRITE_TTL)
    except (DatabaseError, redis.RedisError) as exc:
        logger.warning("Could not note a client's write for read-your-writes: %s", exc)


def _last_write(client: str | None) -> int | None:
    """The client's last noted write position, 0 for none; None when Redis cannot say."""
    if client is None:
        return 0
    try:
        value = _redis().get(_written_key(client))
    except redis.RedisError as exc:
        logger.warning("Read-your-writes store unavailable, reading from the primary: %s", exc)
        return None
    return int(value) if value is not None else 0


def replica_usable(client: str | None) -> bool:
    """May this client's reads go to the replica now?"""
    if not replica_configured():
        return False
    written = _last_write(client)
    if written is None:
        return False
    status = replica_status.get()
    if status.up and written and not status.has_replayed(written):
        # A write this process has not yet seen replayed: ask once more before giving up.
        status = replica_status.get(fresh=True)
    return (
        status.up
        and status.lag <= settings.DATABASE_REPLICA_MAX_LAG
        and status.has_replayed(written)
    )


# --- opting in ------------------------------------------------------------------------------


@contextmanager
def reads_from_replica(request: HttpRequest) -> Iterator[str]:
    """Inside: this request's reads go to the replica if it is usable for this client (see
    `replica_usable`), else to the primary. Yields the alias chosen."""
    alias = REPLICA if replica_usable(client_of(request)) else DEFAULT_DB_ALIAS
    token = _reads.set(alias if alias == REPLICA else None)
    try:
        yield alias
    finally:
        _reads.reset(token)


@contextmanager
def reads_from_primary() -> Iterator[None]:
    """Inside: reads go to the primary even within `reads_from_replica()`."""
    token = _reads.set(None)
    try:
        yield
    finally:
        _reads.reset(token)


V = TypeVar("V", bound=Callable[..., HttpResponse])


def replica_reads(view: V) -> V:
    """A function view whose reads may go to the replica (see `reads_from_replica`)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            return view(request, *args, **kwargs)
        with reads_from_replica(request):
            return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class ReadYourWritesMiddleware:
    """Notes the WAL position after every successful unsafe request of an identified client
    (see `write_noted`). Not after a refusal (4xx, 5xx): a flood of requests with made-up keys
    must not fill Redis, and a refused request wrote nothing (a bulk registration with failed
    items answers 200). Removes itself when no replica is configured."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not replica_configured():
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and response.status_code < 400:
            client = client_of(request, after_response=True)
            if client is not None:
                write_noted(client)
        return response
