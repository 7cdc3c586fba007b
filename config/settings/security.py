"""HTTPS, cookies, the reverse proxy in front, and the admin's login throttling.

Safe by default when DEBUG is off: the site is taken to be served over HTTPS (TLS ends at a proxy
in front of gunicorn), so HTTP is redirected, cookies are Secure and HSTS is sent. A plain-HTTP
deployment (docker-compose.yml's local trial) says HTTPS=0. Each value can be set on its own
(docs/deployment.md lists them). The SECRET_KEY refusal is in config/security.py.
"""

from __future__ import annotations

from datetime import timedelta

from config.env import envbool, envint, envlist, envstr
from config.settings.core import DEBUG

HTTPS = envbool("HTTPS", not DEBUG)

SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", HTTPS)
# Load balancers and orchestrators probe health over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", HTTPS)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits the whole registrable domain in browsers for months: the domain owner's
# call (SECURE_HSTS_PRELOAD=1), so `check --deploy` is not asked to insist on it.
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# The header the TLS proxy sets to say the request came over HTTPS, e.g. X-Forwarded-Proto.
# Only for a proxy that always sets it (overwriting the client's): Django believes it as is.
_proxy_ssl_header = envstr("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# Reverse proxies (CIDRs or addresses) whose X-Forwarded-For is believed when finding a client's
# address (config/client_ip.py); empty: REMOTE_ADDR is the client. gunicorn never rewrites it.
TRUSTED_PROXIES = envlist("TRUSTED_PROXIES", "")

# Messages live in the session (server side), not in a client-readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- Admin login throttling (django-axes) -----------------------------------------------------
# Failed logins are counted in the database (shared by every web worker) per client address
# (config/client_ip.py: behind TRUSTED_PROXIES, the buyer's, not the proxy's) and per username;
# either reaching LOGIN_FAILURE_LIMIT locks logins out for LOGIN_COOLOFF_MINUTES, the right
# password included. A success clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = envlist("LOGIN_LOCKOUT_BY", "ip_address,username")
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked.html"
