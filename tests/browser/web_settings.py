"""Settings of the web process the browser test starts: the test settings, with the admin's CSS and scripts
served (WhiteNoise from the finders, nothing to collect), so that the pages work and look as they do in use."""

from config.settings_test import *  # noqa: F403
from config.settings_test import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE[:1], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
