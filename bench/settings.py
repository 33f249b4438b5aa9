"""Settings for the peer only: the project's settings with django-unused-media installed."""

from mediaproject.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_unused_media"]  # noqa: F405
