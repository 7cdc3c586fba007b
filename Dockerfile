FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The runtime lock only: tests, linters and type checking are in requirements-dev.lock.
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
# Build steps load the settings only (no database, no serving); the real SECRET_KEY comes at run
# time, and gunicorn and Celery refuse to start without it (config/security.py).
RUN DATABASE_URL=postgres://x@localhost/x python manage.py collectstatic --noinput -v0
# Fails the build if package data is missing (the EPCIS JSON Schema, warehouses.E001).
RUN DATABASE_URL=postgres://x@localhost/x python manage.py check
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "2"]
