"""ASGI config: exposes the ASGI callable as a module-level variable named ``application``."""

import os
import sys

from django.core.asgi import get_asgi_application

from mediaproject.environment import SettingError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaproject.settings")

try:
    application = get_asgi_application()
except SettingError as exc:
    # The server stops at start with the one line, rather than failing every request.
    sys.stderr.write(f"{exc}\n")
    raise SystemExit(2) from None
