import os

from django.core.wsgi import get_wsgi_application

from config.security import refuse_insecure_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# A gunicorn worker that raises here fails to boot, and gunicorn exits with the message.
refuse_insecure_start()
