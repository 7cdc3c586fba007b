"""Test overrides: the same real PostgreSQL and Redis, a throwaway media folder, fast hashing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from config import queues
from config.settings import *

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="hub-test-media-"))
INBOX_ROOT = Path(tempfile.mkdtemp(prefix="hub-test-inbox-"))
STORAGES = {
    **STORAGES,
    "retention": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tempfile.mkdtemp(prefix="hub-test-retention-")},
    },
}
DEBUG = False
# DEBUG off as in production, with a key of its own (config/security.py refuses the default).
SECRET_KEY = "test-only-secret-key-" + "x" * 40
# The test client and live servers speak plain HTTP (tests/config/test_deploy.py checks the
# production values).
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# django-axes needs the request to authenticate, which the test client's login() does not pass;
# tests/config/test_login_throttle.py turns it on.
AXES_ENABLED = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Each xdist-less test run gets its own Redis database number to avoid stepping on a dev worker.
CELERY_BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Queues of our own, so a demo worker on the same Redis never takes the tests' tasks.
CELERY_TASK_QUEUES = queues.task_queues("hub-test-")
CELERY_TASK_ROUTES = queues.task_routes("hub-test-")
CELERY_TASK_DEFAULT_QUEUE = "hub-test-" + queues.MAINTENANCE
