from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals
from django.core.exceptions import ImproperlyConfigured

from config.security import refuse_insecure_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_insecure_start(**kwargs: Any) -> None:
    # Celery logs and swallows an exception raised by a signal handler; SystemExit stops it.
    try:
        refuse_insecure_start()
    except ImproperlyConfigured as error:
        raise SystemExit(str(error)) from None
