"""A web or Celery process refuses to start with a publicly known SECRET_KEY while DEBUG is off.

The key signs sessions, password-reset links and CSRF tokens: with the development default
anyone can forge them. The refusal is at the start of gunicorn's workers (config/wsgi.py) and of
Celery's worker and beat (config/celery_app.py), not in the settings, so `manage.py` commands,
the type checker and the image build still load the settings without a real key.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
# Keys that are public: the development default, and the placeholder docker-compose.yml once
# defaulted to.
KNOWN_SECRET_KEYS = frozenset({DEV_SECRET_KEY, "change-me-in-production"})


def insecure_start_reason() -> str | None:
    """Why this process must not serve, or None."""
    if settings.DEBUG or settings.SECRET_KEY not in KNOWN_SECRET_KEYS:
        return None
    return (
        "SECRET_KEY is not set (or is a published placeholder) and DEBUG is off: refusing to "
        "start. Set SECRET_KEY to a long random value, e.g. "
        '`python -c "import secrets; print(secrets.token_urlsafe(50))"` '
        "(docs/deployment.md), or DEBUG=1 on a development machine."
    )


def refuse_insecure_start() -> None:
    reason = insecure_start_reason()
    if reason:
        raise ImproperlyConfigured(reason)
