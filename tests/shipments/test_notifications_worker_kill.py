"""A Celery worker killed mid-send (issue 17: "no duplicate after a worker kill mid-send").

A real worker process on the test webhooks queue (the command of scripts/demo.sh, pointed at the
test database) takes the sender task; the SMTP server (tests/shipments/smtp.py) holds its DATA;
the worker's process group is killed with SIGKILL while the message is `sending`. A worker
started again sends it once the lease has run out: the server received it exactly once, with
the Message-ID fixed before the kill.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from config import celery_app
from shipments.models import NotificationMessage
from shipments.notifications import services
from tests.conftest import hub_csv
from tests.faults.hub import Process
from tests.shipments.conftest import ShopClient
from tests.shipments.smtp import SMTPServer
from warehouses.models import Feed, FeedRun

pytestmark = pytest.mark.celery_worker

BIN = Path(sys.executable).parent
TASK = "shipments.tasks.send_notifications"


def _wait(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _passes(worker: Process) -> list[str]:
    """What each finished sender pass of the worker returned (messages sent), from its log."""
    return re.findall(
        rf"Task {TASK}\[[^\]]+\] succeeded in [0-9.]+s: (\d+)", worker.log_since_start()
    )


def _pass(worker: Process) -> str:
    """Send one sender task and wait for the worker to finish it; what it returned."""
    done = len(_passes(worker))
    celery_app.send_task(TASK)
    _wait(lambda: len(_passes(worker)) > done, 60, "the sender pass to finish")
    return _passes(worker)[done]


def _worker_env(server: SMTPServer) -> dict[str, str]:
    database = connection.settings_dict
    host = database["HOST"] or "127.0.0.1"
    url = f"postgres://{database['USER']}@{host}:{database['PORT'] or 5432}/{database['NAME']}"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": url,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(server.port),
        "NOTIFY_COALESCE_SECONDS": "0",
        "NOTIFY_QUIET_START_HOUR": "0",
        "NOTIFY_QUIET_END_HOUR": "0",
        "NOTIFY_SEND_LEASE_SECONDS": "600",
        "PYTHONUNBUFFERED": "1",
    }


def _start(name: str, env: dict[str, str], logs: Path) -> Process:
    queue = django_settings.CELERY_TASK_ROUTES[TASK]["queue"]
    worker = Process(
        name,
        [
            str(BIN / "celery"), "-A", "config", "worker", "-l", "info", "-Q", queue,
            "-n", f"{name}-{time.time_ns()}@%h", "--pool", "solo",
            "--without-gossip", "--without-mingle",
        ],
        env,
        logs / f"{name}.log",
    )  # fmt: skip
    _wait(
        lambda: " ready." in worker.log_since_start() or not worker.alive(),
        90,
        f"{name} to be ready",
    )
    assert worker.alive(), worker.log_since_start()[-3000:]
    return worker


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_delivers_the_message_exactly_once_after_restart(
    shop_a: ShopClient, feed: Feed, ingest: Callable[..., FeedRun], settings: Any
) -> None:
    server = SMTPServer(hold_first=True)
    logs = Path(tempfile.mkdtemp(prefix="hub-notify-worker-"))
    workers: list[Process] = []
    try:
        services.shop_notification_settings_update(shop=shop_a.shop, enabled=True)
        answer = shop_a.client.post(
            "/api/v1/shipments",
            {"tracking_number": "NW001", "buyer_email": "killed@example.com"},
            format="json",
        )
        assert answer.status_code == 201
        ingest(feed, hub_csv("NW001,departed,2026-05-02T10:00:00+08:00,,,CNHEK,CN,,,,,"))
        env = _worker_env(server)
        workers.append(_start("notify-worker", env, logs))
        celery_app.send_task(TASK)
        assert server.held.wait(60), workers[0].log_since_start()[-3000:]
        message = NotificationMessage.objects.get()
        assert (message.state, message.attempts) == ("sending", 1)
        workers[0].kill_group()
        server.release()
        assert server.received == []

        workers.append(_start("notify-worker-restarted", env, logs))
        # While the lease lasts, a pass sends nothing again.
        restarted = workers[1]
        assert _pass(restarted) == "0"
        message.refresh_from_db()
        assert (message.state, message.attempts) == ("sending", 1)
        assert server.received == []
        # The lease runs out (its clock moved on rather than the test waiting 10 minutes).
        NotificationMessage.objects.update(next_attempt_at=timezone.now())
        assert _pass(restarted) == "1"
        # More passes send nothing more.
        assert _pass(restarted) == "0"
        (received,) = server.received
        message.refresh_from_db()
        assert (message.state, message.attempts) == ("sent", 2)
        assert received["Message-ID"] == message.message_id
        assert received["To"] == "killed@example.com"
    finally:
        for worker in workers:
            worker.stop()
        server.close()
