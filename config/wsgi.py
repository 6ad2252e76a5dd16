import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from commerce.webhooks import WebhookFastPath  # noqa: E402  (needs the configured Django above)

# Commerce's webhooks go straight to their view, everything else through Django's full stack.
application = WebhookFastPath(django_application)

# Everything loaded so far lives as long as the process: keep it out of the garbage collector's full passes,
# which would otherwise walk it every few hundred requests (a pause of several milliseconds, seen at p99).
gc.freeze()
