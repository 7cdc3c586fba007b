"""One scenario's hub: a fresh database, real Celery workers and beat, gunicorn, and the SQL
the suite counts with.

Every process is started with `subprocess` in a session (process group) of its own, with the
same commands scripts/demo.sh and the Dockerfile use, pointed at the disposable services by
environment; logs go to files under the scenario's folder and their tails are printed when a
scenario fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from tests.faults.services import Postgres, Redis, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FINAL = ("succeeded", "partial", "failed")

# Timers shortened so a scenario recovers in seconds rather than minutes; every one is an
# env-driven setting of config/settings/ (docs/faults.md lists the production values).
FAST_TIMERS = {
    # Small batches: a kill or an outage lands between two checkpoints of one run.
    "INGEST_BATCH_SIZE": "1000",
    # The stuck-run sweep (docs/reliability.md): a run's worker beats every 2 s, a run silent for
    # 10 s has lost it; the sweep runs every 5 s and sends an unpublished run after 5 s.
    "INGEST_HEARTBEAT_SECONDS": "2",
    "INGEST_STALE_AFTER_SECONDS": "10",
    "INGEST_SWEEP_EVERY_SECONDS": "5",
    "INGEST_UNSENT_GRACE_SECONDS": "5",
    "INGEST_RETRY_BASE_SECONDS": "2",
    "INBOX_SCAN_EVERY_SECONDS": "5",
    "WEBHOOK_RELAY_EVERY_SECONDS": "1",
    # A relay pass starts no request after 5 s (its claim's lease is that + the request timeout
    # + a 30 s margin): a killed relay's endpoints are free again sooner.
    "WEBHOOK_RELAY_PASS_SECONDS": "5",
    "WEBHOOK_RETRY_BASE_SECONDS": "1",
    "OPS_REFRESH_EVERY_SECONDS": "3600",
}


class Process:
    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, list(command), env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.killed = False
        self.stopped = False
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as log:
            log.write(f"\n=== start {' '.join(self.command)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = self.log.stat().st_size

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def log_since_start(self) -> str:
        with self.log.open("rb") as handle:
            handle.seek(self.started_at)
            return handle.read().decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill_group(self) -> None:
        """kill -9 of the main process and all its children: the host died."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        assert self.popen is not None
        self.popen.wait(timeout=30)

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.pid).children(recursive=True)

    def last_error(self) -> str:
        errors = [
            line
            for line in self.log_since_start().splitlines()
            if "CRITICAL" in line or "Unrecoverable" in line
        ]
        return errors[-1][:300] if errors else "no error logged"

    def stop(self) -> None:
        """At the end of a scenario: nothing left to finish gracefully."""
        self.stopped = True
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)


@dataclass
class Push:
    status: int
    body: dict[str, Any]
    content_type: str
    retry_after: str
    seconds: float


class Hub:
    def __init__(
        self,
        *,
        name: str,
        postgres: Postgres,
        redis: Redis,
        redis_db: int,
        root: Path,
        template: str,
    ) -> None:
        self.name = name
        self.postgres, self.redis = postgres, redis
        self.root = root
        self.database = f"faults_{name}"
        self.processes: list[Process] = []
        # Processes the supervisor started again: (name, why it had exited).
        self.restarts: list[tuple[str, str]] = []
        self._supervising = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.web_port = 0
        postgres.execute(f'DROP DATABASE IF EXISTS "{self.database}"')
        postgres.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"')
        redis.command("FLUSHALL")
        self.media = root / "media"
        self.inbox = root / "inbox"
        self.logs = root / "logs"
        for folder in (self.media, self.inbox, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": postgres.url(self.database),
            # A Redis database of its own: a straggler of another scenario never takes its tasks.
            "REDIS_URL": redis.url(redis_db),
            "MEDIA_ROOT": str(self.media),
            "INBOX_ROOT": str(self.inbox),
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            # Production settings (DEBUG off) served over plain HTTP on the loopback; gunicorn
            # and Celery refuse the development key (config/security.py).
            "SECRET_KEY": "faults-only-" + "x" * 50,
            "HTTPS": "0",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **FAST_TIMERS,
        }

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, command: Sequence[str]) -> Process:
        process = Process(name, command, self.env, self.logs / f"{name}.log")
        self.processes.append(process)
        return process

    def workers(self) -> dict[str, Process]:
        """The workers of scripts/demo.sh and docker-compose, one per queue (config/queues.py).
        Started without waiting."""
        return {
            queue: self.worker(queue, [queue], concurrency)
            for queue, concurrency in {"ingest": 2, "webhooks": 2, "maintenance": 1}.items()
        }

    def worker(self, name: str, queues: Sequence[str], concurrency: int) -> Process:
        """One worker consuming `queues` (`-Q a,b`), named `name`; started without waiting."""
        return self._spawn(
            name,
            [
                str(BIN / "celery"), "-A", "config", "worker", "-l", "info",
                "-Q", ",".join(queues), "-n", f"{name}@%h", "--concurrency", str(concurrency),
            ],
        )  # fmt: skip

    def restart(self, process: Process) -> Process:
        """The same command again (a supervisor restarting a dead worker); waits until ready."""
        again = self._spawn(f"{process.name}-restarted", process.command)
        self.wait_ready(again)
        return again

    def start(self, *, beats: int = 1) -> dict[str, Process]:
        """Workers, beat(s) and gunicorn, started together; returns once every worker is ready."""
        workers = self.workers()
        for n in range(beats):
            self.beat(f"beat-{n + 1}" if beats > 1 else "beat")
        self.web()
        for process in workers.values():
            self.wait_ready(process)
        return workers

    def ingest_worker(self) -> Process:
        return next(p for p in self.processes if p.name == "ingest")

    def wait_ready(self, process: Process) -> None:
        wait_until(
            lambda: " ready." in process.log_since_start() or not process.alive(),
            timeout=90,
            what=f"{process.name} to be ready (log {process.log})",
        )
        assert process.alive(), f"{process.name} exited: {process.log_since_start()[-3000:]}"

    def beat(self, name: str = "beat") -> Process:
        return self._spawn(
            name,
            [
                str(BIN / "celery"), "-A", "config", "beat", "-l", "info",
                "--pidfile", str(self.root / f"{name}.pid"),
            ],
        )  # fmt: skip

    def web(self) -> Process:
        self.web_port = free_port()
        process = self._spawn(
            "web",
            [
                str(BIN / "gunicorn"), "config.wsgi", "-c", "config/gunicorn.py",
                "-b", f"127.0.0.1:{self.web_port}", "-w", "1", "--timeout", "60",
            ],
        )  # fmt: skip
        wait_until(
            lambda: requests.get(self.url("/healthz"), timeout=2).status_code < 500,
            timeout=90,
            what=f"gunicorn to answer /healthz (log {process.log})",
        )
        return process

    def supervise(self) -> None:
        """Start again every process that exits on its own, within a second, as docker-compose's
        `restart: unless-stopped` and scripts/demo.sh do. A process the scenario killed
        (`kill_group`) or stopped is left to the scenario."""

        def loop() -> None:
            while not self._supervising.wait(0.5):
                for process in list(self.processes):
                    if process.alive() or process.killed or process.stopped:
                        continue
                    self.restarts.append((process.name, process.last_error()))
                    process.start()

        self._supervisor = threading.Thread(target=loop, name="faults-supervisor", daemon=True)
        self._supervisor.start()

    def restarted(self) -> str:
        return "; ".join(
            f"{name} exited ({why}) and was started again" for name, why in self.restarts
        )

    def exited(self) -> str:
        """Processes that died on their own (not killed by the scenario), with their last error."""
        return "; ".join(
            f"{process.name} exited ({process.last_error()})"
            for process in self.processes
            if not (process.alive() or process.killed)
        )

    def stop_all(self) -> None:
        self._supervising.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for process in self.processes:
            process.stop()

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            # The relay's idle passes (every second) would bury everything else.
            text = [
                line
                for line in path.read_text("utf-8", "replace").splitlines()
                if "relay_webhooks" not in line and "prune_idempotency" not in line
            ][-lines:]
            out.append(f"----- {path.name} (last {lines} lines)\n" + "\n".join(text))
        return "\n".join(out)

    # --- seeding and traffic ------------------------------------------------------------------

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """What tests/faults/agent.py answers to `spec` (seeding, a backlog, a recording)."""
        return self.agent_answer(self.agent(), spec)

    def agent(self) -> subprocess.Popen[bytes]:
        """tests/faults/agent.py started ahead: Django set up, it waits for its spec."""
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.agent"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def agent_answer(self, agent: subprocess.Popen[bytes], spec: dict[str, Any]) -> dict[str, Any]:
        out, err = agent.communicate(json.dumps(spec).encode(), timeout=120)
        assert agent.returncode == 0, err.decode()[-3000:]
        return dict(json.loads(out.decode().strip().splitlines()[-1]))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def push(self, feed: str, token: str, body: bytes, *, name: str = "events.csv") -> Push:
        started = time.monotonic()
        response = requests.post(
            self.url(f"/api/v1/feeds/{feed}/payloads"),
            data=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "text/csv",
                "X-Filename": name,
            },
            timeout=60,
        )
        content_type = response.headers.get("Content-Type", "")
        try:
            parsed = response.json()
        except ValueError:
            parsed = {"text": response.text[:500]}
        return Push(
            response.status_code,
            parsed,
            content_type,
            response.headers.get("Retry-After", ""),
            time.monotonic() - started,
        )

    # --- what the database holds ---------------------------------------------------------------

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(
            self.postgres.url(self.database), autocommit=True, connect_timeout=5
        ) as conn:
            yield conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.rows(sql, params)[0][0]

    def events(self) -> int:
        return int(self.value("SELECT count(*) FROM shipments_trackingevent"))

    def duplicated(self) -> int:
        """Events beyond the first of one identity (feed, parcel, code, time, place)."""
        return int(
            self.value(
                """
                SELECT coalesce(sum(n - 1), 0) FROM (
                    SELECT count(*) AS n FROM shipments_trackingevent
                    GROUP BY feed_id, shipment_id, unit_id, code, occurred_at, location_code
                    HAVING count(*) > 1
                ) d
                """
            )
        )

    def runs(self) -> list[tuple[int, str, int, int, int, str]]:
        return [
            (int(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), str(r[5]))
            for r in self.rows(
                "SELECT id, status, records_processed, events_created, rejected, error"
                " FROM warehouses_feedrun ORDER BY id"
            )
        ]

    def runs_summary(self) -> str:
        return "; ".join(
            f"run {run_id} {status} ({processed} processed, {events} events, {rejected} rejected"
            + (f", error {error[:200]!r})" if error else ")")
            for run_id, status, processed, events, rejected, error in self.runs()
        )

    def first_batch(self, run_id: int) -> int:
        """Wait for the run's first committed batch; returns the checkpoint at that moment."""
        return int(
            wait_until(
                lambda: self.value(
                    "SELECT records_processed FROM warehouses_feedrun WHERE id = %s", [run_id]
                ),
                timeout=90,
                what=f"run {run_id} to commit its first batch",
                every=0.05,
            )
        )

    def unfinished_runs(self) -> list[tuple[int, str]]:
        return [(r[0], r[1]) for r in self.runs() if r[1] not in (*FINAL, "duplicate")]

    def wait_runs_final(self, *, count: int, timeout: float, what: str) -> float:
        """Wait until `count` runs exist and none is queued/running; returns the seconds taken."""
        started = time.monotonic()

        def done() -> bool:
            runs = self.runs()
            return len(runs) >= count and not self.unfinished_runs()

        try:
            wait_until(done, timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; runs (id, status, processed, events, rejected, error): {self.runs()}"
            ) from None
        return time.monotonic() - started

    def advisory_lock_client_port(self) -> int | None:
        rows = self.rows(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = %s",
            [self.database],
        )
        return int(rows[0][0]) if rows else None

    def child_holding_the_feed_lock(self, worker: Process) -> psutil.Process:
        """The worker child running the ingest: the one whose connection holds the feed lock."""

        def find() -> psutil.Process | None:
            port = self.advisory_lock_client_port()
            if port is None:
                return None
            for child in worker.children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if any(c.laddr and c.laddr.port == port for c in child.net_connections("tcp")):
                        return child
            return None

        return wait_until(find, timeout=30, what="the worker child holding the feed lock")
