"""Production settings plus the bench URLconf (bench/api.py sets DATABASE_URL to hub_bench)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "api_bench_urls"
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
