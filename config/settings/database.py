"""The two stores: PostgreSQL (DATABASE_URL) and Redis (REDIS_URL: Celery's broker, throttles)."""

from __future__ import annotations

from config.env import (
    database_behind_pooler,
    database_from_url,
    database_pooler,
    database_replica,
    envbool,
    envfloat,
    envint,
    envstr,
)

# No silent fallback to SQLite: without DATABASE_URL, `make` starts an embedded PostgreSQL and
# exports its URL (config/embedded.py). Running Django by hand needs DATABASE_URL set.
DATABASE_URL = envstr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# JIT compilation costs tens of milliseconds per query and only pays off on long analytic scans;
# the API's lookups are sub-millisecond, yet a plan over near-empty tables (default estimates)
# can cross jit_above_cost. DB_JIT=1 turns it back on.
# random_page_cost: PostgreSQL's default (4) prices an index probe as a spinning-disk seek, so
# the recorder's 5,000 dedupe-key probes per batch plan as a sequential scan of the whole events
# table. On SSD/cloud storage 1.1 is the usual setting (DB_RANDOM_PAGE_COST to change it).
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
assert isinstance(_db_options, dict)
_pg_flags = [f"-c random_page_cost={envstr('DB_RANDOM_PAGE_COST', '1.1')}"]
if not envbool("DB_JIT", False):
    _pg_flags.append("-c jit=off")
_db_options.setdefault("options", " ".join(_pg_flags))

# DATABASE_POOLER=pgbouncer: DATABASE_URL points at PgBouncer in transaction pooling mode
# (docs/scaling.md). The flags above then go on the server instead (PgBouncer refuses them).
# DATABASE_REPLICA_URL: a streaming replica that the shops' GET endpoints, the buyers' page and
# the dashboard read from, with read-your-writes (config/replica.py, docs/scaling.md). Unset:
# no second database, no router, and the read-your-writes middleware removes itself.
DATABASE_REPLICA_URL = envstr("DATABASE_REPLICA_URL").strip()
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_replica(DATABASES["default"], DATABASE_REPLICA_URL)
    DATABASE_ROUTERS = ["config.replica.PrimaryReplicaRouter"]
# A replica whose replay lags more than this many seconds is not read from.
DATABASE_REPLICA_MAX_LAG = envfloat("DATABASE_REPLICA_MAX_LAG", 5.0)
# How long a process reuses its check of the replica's replay position and lag (seconds).
DATABASE_REPLICA_CHECK_SECONDS = envfloat("DATABASE_REPLICA_CHECK_SECONDS", 1.0)
# After the replica failed to answer, how long reads go to the primary before it is tried again.
DATABASE_REPLICA_RETRY_SECONDS = envfloat("DATABASE_REPLICA_RETRY_SECONDS", 10.0)
# How long a client's last write position is kept. Past it, the write is assumed replayed:
# keep it well above DATABASE_REPLICA_MAX_LAG (a replica lagging more is not read from).
DATABASE_REPLICA_WRITE_TTL = envint("DATABASE_REPLICA_WRITE_TTL", 300)

DATABASE_POOLER = database_pooler()
if DATABASE_POOLER:
    DATABASES = {alias: database_behind_pooler(entry) for alias, entry in DATABASES.items()}

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
