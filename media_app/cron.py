"""The scheduled face of the sweep: the job django-crontab runs, and how to find its crontab line.

``CRONJOBS`` (in settings) names ``cleanup_media`` below with ``MEDIA_CLEANUP_SCHEDULE``
converted to the host's zone; ``python manage.py crontab add`` writes a line
``<schedule> MEDIA_CLEANUP_WRITTEN_FOR=<offsets> <python> <manage.py> crontab run <hash> >> <log> 2>&1``.
"""

import hashlib
import json
import logging
import re
import shlex
import shutil
import subprocess

from django.conf import settings
from django.utils import timezone
from django_crontab.app_settings import Settings as CrontabSettings

from . import conf, cron_monitor, schedule
from .cleanup.engine import freeze_loaded_objects, run_cleanup
from .cleanup.exit_codes import SUCCESS
from .cleanup.result import summary
from .models import CleanupRun

logger = logging.getLogger(__name__)

JOB = "media_app.cron.cleanup_media"


class CrontabUnreadable(Exception):
    """The crontab could not be listed (another error than having none)."""


def cleanup_media():
    """Run the sweep for cron and print a dated summary, which the crontab line appends to the log.

    With ``SENTRY_DSN`` set, Sentry's cron monitor hears of its start and end (``cron_monitor``).
    """
    freeze_loaded_objects()
    with cron_monitor.check_in() as check_in:
        result = run_cleanup(trigger=CleanupRun.Trigger.CRON, files_process=True)
        check_in.succeeded = result.exit_code == SUCCESS
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


def job_line(job, lines):
    """Return the line of ``lines`` that runs ``job`` as defined now, or None when there is none."""
    marker = f" crontab run {job_hash(job)} "
    for line in lines:
        if not line.lstrip().startswith("#") and marker in f"{line} ":
            return line
    return None


def job_for_hash(hash_):
    """Return the job of ``CRONJOBS`` that a line's hash names, or None when no job has it now."""
    return next((job for job in conf.cron_jobs() if job_hash(job) == hash_), None)


def project_lines(lines):
    """Return this project's lines: those django-crontab's ``add`` and ``remove`` replace (by comment)."""
    crontab_settings = CrontabSettings(settings)
    return [
        line
        for line in lines
        if any(
            match[4] == crontab_settings.CRONTAB_COMMENT
            for match in crontab_settings.CRONTAB_LINE_REGEXP.findall(line)
        )
    ]


def line_hash(line):
    """Return the job hash a crontab line runs, or None."""
    found = re.search(r" crontab run (\S+)", line)
    return found and found.group(1)


def written_for(line):
    """Return the offsets a crontab line was converted with, or None when it does not say."""
    found = re.search(rf"(?:^|\s){schedule.WRITTEN_FOR}=(\S+)", line)
    try:
        return found and schedule.Offsets.parse(found.group(1))
    except schedule.ScheduleError:
        return None


def host_schedule():
    """Return ``MEDIA_CLEANUP_SCHEDULE`` converted to the host's zone with today's offsets.

    Raise ``schedule.ScheduleError`` when it cannot be converted exactly.
    """
    return schedule.convert(conf.schedule(), settings.TIME_ZONE, conf.host_time_zone(), timezone.now())


def offsets():
    """Return today's UTC offsets of ``TIME_ZONE`` and of the host's zone."""
    return schedule.Offsets.at(
        schedule.zone(settings.TIME_ZONE, "TIME_ZONE"),
        schedule.host_zone(conf.host_time_zone()),
        timezone.now(),
    )
