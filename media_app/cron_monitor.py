"""Tell Sentry's cron monitor about each scheduled sweep: in progress, then ok or error by its status.

Only with ``SENTRY_DSN`` set (the settings then start sentry-sdk); without it nothing of Sentry is
imported and the check-in does nothing. The first check-in creates the monitor ``media-cleanup``
in Sentry, and each one updates it with ``MEDIA_CLEANUP_SCHEDULE`` in ``TIME_ZONE``, so that
Sentry also reports a run that never started.
"""

import dataclasses
import time
from contextlib import contextmanager

from django.conf import settings

from . import conf

MONITOR_SLUG = "media-cleanup"


@dataclasses.dataclass
class CheckIn:
    """The outcome of a scheduled run: the ``with`` block sets ``succeeded``, left False by an error."""

    succeeded: bool = False


@contextmanager
def check_in():
    """Check in as started, yield a ``CheckIn``, then check in ``ok`` if it succeeded, else ``error``."""
    outcome = CheckIn()
    if not conf.sentry_dsn():
        yield outcome
        return
    from sentry_sdk.crons import MonitorStatus, capture_checkin

    config = {"schedule": {"type": "crontab", "value": conf.schedule()}, "timezone": settings.TIME_ZONE}
    started = time.monotonic()
    check_in_id = capture_checkin(
        monitor_slug=MONITOR_SLUG, status=MonitorStatus.IN_PROGRESS, monitor_config=config
    )
    try:
        yield outcome
    finally:
        capture_checkin(
            monitor_slug=MONITOR_SLUG,
            check_in_id=check_in_id,
            status=MonitorStatus.OK if outcome.succeeded else MonitorStatus.ERROR,
            duration=time.monotonic() - started,
            monitor_config=config,
        )
