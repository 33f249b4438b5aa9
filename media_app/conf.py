"""The sweep's settings, with their defaults; read at call time so that tests can override them.

The values come from the environment through ``mediaproject/settings.py``.
"""

import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings

from .cleanup.durations import parse_duration

DEFAULTS = {
    "MEDIA_CLEANUP_MIN_AGE": "24h",
    "MEDIA_CLEANUP_MAX_DELETE_RATIO": 0.5,
    "MEDIA_CLEANUP_CAP_MIN_ITEMS": 10,
    "MEDIA_CLEANUP_HISTORY_DAYS": 90,
    "MEDIA_CLEANUP_QUARANTINE_DAYS": 7,
    "MEDIA_CLEANUP_QUARANTINE_ROOT": None,  # <project>/var/quarantine, set in settings.py
    "MEDIA_CLEANUP_QUARANTINE_PREFIX": "quarantine/",
    "MEDIA_UPLOAD_MAX_BYTES": 10 * 1024 * 1024,
    "MEDIA_UPLOAD_ALLOWED_TYPES": ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"],
    "MEDIA_CLEANUP_ALERT_AFTER": "2d",
    "MEDIA_CLEANUP_LOG_FILE": None,  # settings.py sets <project>/var/log/cleanup_media.log
    "MEDIA_CLEANUP_SCHEDULE": "0 3 * * *",
    "MEDIA_CLEANUP_HOST_TIME_ZONE": "",  # the zone /etc/localtime names
    "CRONJOBS": [],
    "CRONTAB_EXECUTABLE": "/usr/bin/crontab",  # django-crontab's default
}


def _get(name):
    return getattr(settings, name, DEFAULTS[name])


def _duration(name) -> timedelta:
    """Return a duration setting; raise ValueError naming the setting when it does not parse."""
    try:
        return parse_duration(_get(name))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def min_age() -> timedelta:
    """Return the grace period."""
    return _duration("MEDIA_CLEANUP_MIN_AGE")


def max_delete_ratio() -> float:
    return float(_get("MEDIA_CLEANUP_MAX_DELETE_RATIO"))


def cap_min_items() -> int:
    return int(_get("MEDIA_CLEANUP_CAP_MIN_ITEMS"))


def history_days() -> int:
    return int(_get("MEDIA_CLEANUP_HISTORY_DAYS"))


def quarantine_days() -> int:
    """Return how long removed files stay in the quarantine; 0 deletes them at once."""
    return int(_get("MEDIA_CLEANUP_QUARANTINE_DAYS"))


def quarantine_root():
    return str(_get("MEDIA_CLEANUP_QUARANTINE_ROOT") or os.path.join(settings.BASE_DIR, "var", "quarantine"))


def quarantine_prefix():
    """Return the quarantine's key prefix on object storage, ending with a slash."""
    return str(_get("MEDIA_CLEANUP_QUARANTINE_PREFIX")).strip("/") + "/"


def upload_max_bytes() -> int:
    return int(_get("MEDIA_UPLOAD_MAX_BYTES"))


def upload_allowed_types() -> set:
    return set(_get("MEDIA_UPLOAD_ALLOWED_TYPES"))


def alert_after() -> timedelta:
    """Return how old the last successful run may be."""
    return _duration("MEDIA_CLEANUP_ALERT_AFTER")


def log_file() -> Path:
    """Return the file that the cron job and the admin's runs append their output to."""
    configured = _get("MEDIA_CLEANUP_LOG_FILE")
    return Path(configured) if configured else Path(settings.BASE_DIR) / "var" / "log" / "cleanup_media.log"


def schedule() -> str:
    """Return the sweep's cron schedule, five fields meant in ``TIME_ZONE``."""
    return _get("MEDIA_CLEANUP_SCHEDULE")


def host_time_zone() -> str:
    """Return the zone cron runs in as set, or "" for the one ``/etc/localtime`` names."""
    return _get("MEDIA_CLEANUP_HOST_TIME_ZONE")


def cron_jobs() -> list:
    """Return django-crontab's job definitions (``CRONJOBS``)."""
    return list(_get("CRONJOBS"))


def crontab_executable() -> str:
    """Return the crontab command django-crontab runs, e.g. ``crontab`` or ``crontab -u USER``."""
    return _get("CRONTAB_EXECUTABLE")
