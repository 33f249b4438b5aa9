"""The scheduled face of the sweep: the job django-crontab runs, and how to find its crontab line.

``CRONJOBS`` (in settings) names ``cleanup_media`` below; ``python manage.py crontab add``
writes a line ``<schedule> <python> <manage.py> crontab run <hash> >> <log file> 2>&1``.
"""

import hashlib
import json
import logging
import shlex
import shutil
import subprocess

from django.utils import timezone

from . import conf
from .cleanup.engine import run_cleanup, summary
from .models import CleanupRun

logger = logging.getLogger(__name__)

JOB = "media_app.cron.cleanup_media"


class CrontabUnreadable(Exception):
    """The crontab could not be listed (another error than having none)."""


def cleanup_media():
    """Run the sweep for cron and print a dated summary, which the crontab line appends to the log."""
    result = run_cleanup(trigger=CleanupRun.Trigger.CRON)
    stamp = timezone.now().isoformat(timespec="seconds")
    print(f"{stamp} cleanup_media (cron): {summary(result)}", flush=True)


def scheduled_job():
    """Return the sweep's entry in ``CRONJOBS``, or None when it is not scheduled."""
    return next((job for job in conf.cron_jobs() if job[1] == JOB), None)


def job_hash(job):
    """Return the hash that names a job on its crontab line (django-crontab's: MD5 of its sorted JSON)."""
    return hashlib.md5(json.JSONEncoder(sort_keys=True).encode(job).encode()).hexdigest()


def crontab_command():
    """Return the crontab executable and its arguments, e.g. ``["crontab", "-u", "mediacron"]``."""
    return shlex.split(conf.crontab_executable())


def crontab_binary():
    """Return the path of the crontab binary, or None when it is not installed."""
    return shutil.which(crontab_command()[0])


def crontab_lines():
    """Return the lines of the crontab; an empty list when there is none; raise CrontabUnreadable."""
    try:
        listing = subprocess.run([*crontab_command(), "-l"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CrontabUnreadable(str(exc)) from None
    if listing.returncode == 0:
        return listing.stdout.splitlines()
    if "no crontab for" in listing.stderr:
        return []
    raise CrontabUnreadable(listing.stderr.strip() or f"exit code {listing.returncode}")


def installed_line(job):
    """Return the crontab line that runs ``job`` as defined now, or None when there is none."""
    marker = f" crontab run {job_hash(job)} "
    for line in crontab_lines():
        if not line.lstrip().startswith("#") and marker in f"{line} ":
            return line
    return None
