"""Settings, one module per concern, all read from the environment.

`DJANGO_SETTINGS_MODULE=config.settings` loads them all; `config.test_settings` overrides the
few things tests need. Every value is an env variable with a default (`config.env` reads them
and refuses a value it cannot read, naming it):

- `core`: Django itself: apps, middleware, templates, languages, static and media files, logs.
- `database`: PostgreSQL (DATABASE_URL and its session flags) and Redis (REDIS_URL).
- `celery`: the broker, worker behaviour, queues by kind of work, and the one beat schedule.
- `ingest`: feed runs: payload and record limits, the run lifecycle, inboxes, fetching.
- `api`: the REST framework, the OpenAPI schema, the shops' and push API's limits.
- `webhooks`: relaying notifications to shops: timeouts, parallelism, breaker, retries.
- `estimates`: delivery estimates and the buyer's public tracking page.
- `notifications`: buyer emails: the mail backend, coalescing, cap, quiet hours, retries.
- `dashboard`: the operations dashboard's statistics.
- `retention`: removing old delivered and returned parcels after exporting them.
- `security`: HTTPS, cookies, the reverse proxy in front, the admin's login throttling.
"""

from config.settings.api import *  # noqa: F403
from config.settings.celery import *  # noqa: F403
from config.settings.core import *  # noqa: F403
from config.settings.dashboard import *  # noqa: F403
from config.settings.database import *  # noqa: F403
from config.settings.estimates import *  # noqa: F403
from config.settings.ingest import *  # noqa: F403
from config.settings.notifications import *  # noqa: F403
from config.settings.retention import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.webhooks import *  # noqa: F403
