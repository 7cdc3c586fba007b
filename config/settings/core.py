"""Django itself: the apps, the request pipeline, templates, languages, files and logs."""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext

from config.env import envbool, envjson_object, envlist, envstr
from config.security import DEV_SECRET_KEY

# Lets admin/queryset classes be subscripted at run time (ModelAdmin[Shop]) for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Without SECRET_KEY, gunicorn and Celery refuse to start unless DEBUG is on (config/security.py).
SECRET_KEY = envstr("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    # Admin login throttling (config/settings/security.py).
    "axes",
    "shipments",
    "warehouses",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic, run by the image build) in every process that
    # serves the app: with DEBUG off Django serves none, and there is no other web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # With DATABASE_REPLICA_URL: notes a client's writes for read-your-writes (config/replica.py);
    # without, it removes itself at start-up.
    "config.replica.ReadYourWritesMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: answers a locked-out login attempt with its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / ".local" / "static")))
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(BASE_DIR / ".local" / "media")))

# Payloads go through the storage API so a worker on another machine can read them: local disk
# here, object storage (django-storages) in production by changing this one setting.
STORAGES = {
    "default": {
        "BACKEND": envstr("PAYLOAD_STORAGE", "django.core.files.storage.FileSystemStorage")
    },
    # Gzip copies next to each file at collectstatic; no manifest of hashed names, so a
    # process that never ran collectstatic still renders its pages (it only lacks the assets).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Exports of removed parcels (docs/retention.md): a folder of its own by default, any
    # storage backend with its options from the environment (an S3 bucket through
    # django-storages: RETENTION_STORAGE=storages.backends.s3.S3Storage and
    # RETENTION_STORAGE_OPTIONS='{"bucket_name": "..."}').
    "retention": {
        "BACKEND": envstr("RETENTION_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": envjson_object("RETENTION_STORAGE_OPTIONS")
        or {"location": envstr("RETENTION_ROOT", str(BASE_DIR / ".local" / "retention"))},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}
