"""The app's settings, read at call time so that tests can override them.

Their defaults live in one place, ``mediaproject/settings.py``, which reads and checks them
from the environment; this module only reads ``django.conf.settings``.
"""

from datetime import timedelta
from pathlib import Path

from django.conf import settings

from .durations import parse_duration


def _setting(name):
    """Return the setting ``name``."""
    return getattr(settings, name)


def _duration(name) -> timedelta:
    """Return a duration setting; raise ValueError naming the setting when it does not parse."""
    try:
        return parse_duration(_setting(name))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def min_age() -> timedelta:
    """Return the grace period."""
    return _duration("MEDIA_CLEANUP_MIN_AGE")


def max_delete_ratio() -> float:
    """Return the largest share of the files or of the rows that a run may delete."""
    return float(_setting("MEDIA_CLEANUP_MAX_DELETE_RATIO"))


def cap_min_items() -> int:
    """Return how many items a run may always delete, whatever their share."""
    return int(_setting("MEDIA_CLEANUP_CAP_MIN_ITEMS"))


def history_days() -> int:
    """Return how many days the run history is kept."""
    return int(_setting("MEDIA_CLEANUP_HISTORY_DAYS"))


def quarantine_days() -> int:
    """Return how long removed files stay in the quarantine; 0 deletes them at once."""
    return int(_setting("MEDIA_CLEANUP_QUARANTINE_DAYS"))


def quarantine_root() -> str:
    """Return the quarantine's folder on local storage."""
    return str(_setting("MEDIA_CLEANUP_QUARANTINE_ROOT"))


def quarantine_prefix() -> str:
    """Return the quarantine's key prefix on object storage, ending with a slash."""
    return str(_setting("MEDIA_CLEANUP_QUARANTINE_PREFIX")).strip("/") + "/"


def s3_list_concurrency() -> int:
    """Return how many requests the sweep sends to object storage at once, listing or deleting."""
    return int(_setting("MEDIA_CLEANUP_S3_LIST_CONCURRENCY"))


def upload_max_bytes() -> int:
    """Return the size of the largest upload accepted, in bytes."""
    return int(_setting("MEDIA_UPLOAD_MAX_BYTES"))


def upload_allowed_types() -> set:
    """Return the MIME types an upload may be."""
    return set(_setting("MEDIA_UPLOAD_ALLOWED_TYPES"))


def alert_after() -> timedelta:
    """Return how old the last successful run may be."""
    return _duration("MEDIA_CLEANUP_ALERT_AFTER")


def metrics_file() -> str:
    """Return the file each run writes its metrics to for Prometheus, or "" for none."""
    return _setting("MEDIA_CLEANUP_METRICS_FILE")


def log_file() -> Path:
    """Return the file that the cron job and the admin's runs append their output to."""
    return Path(_setting("MEDIA_CLEANUP_LOG_FILE"))


def schedule() -> str:
    """Return the sweep's cron schedule, five fields meant in ``TIME_ZONE``."""
    return _setting("MEDIA_CLEANUP_SCHEDULE")


def host_time_zone() -> str:
    """Return the zone cron runs in as set, or "" for the one ``/etc/localtime`` names."""
    return _setting("MEDIA_CLEANUP_HOST_TIME_ZONE")


def cron_jobs() -> list:
    """Return django-crontab's job definitions (``CRONJOBS``)."""
    return list(_setting("CRONJOBS"))


def crontab_executable() -> str:
    """Return the crontab command django-crontab runs, e.g. ``crontab`` or ``crontab -u USER``."""
    return _setting("CRONTAB_EXECUTABLE")


def alert_on() -> set:
    """Return the statuses of a real run's end that mail ADMINS."""
    return set(_setting("MEDIA_CLEANUP_ALERT_ON"))


def admins() -> list:
    """Return whom alerts go to, as ``[(name, address)]``."""
    return list(_setting("ADMINS"))


def site_url() -> str:
    """Return the site's address, e.g. ``https://media.example.ge``, or "" when unset."""
    return _setting("SITE_URL")


def sentry_dsn() -> str:
    """Return the Sentry DSN, or "" when errors and check-ins do not go to Sentry."""
    return _setting("SENTRY_DSN")
