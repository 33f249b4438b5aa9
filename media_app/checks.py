"""Health checks for the sweep, in Django's system-check framework (``manage.py check --deploy``).

Every check is a deployment check tagged ``media_cleanup``; those about the crontab are also
tagged ``media_cleanup_cron``. A monitoring probe runs
``python manage.py check --deploy --tag media_cleanup --fail-level WARNING`` (exit code 1 on any).
"""

import logging
import os

from django.core import checks
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from . import conf, cron, schedule
from .cleanup.exit_codes import SUCCESS
from .cleanup.options import SELECTION_OPTION
from .cleanup.result import EXIT_CODES
from .models import CleanupRun

logger = logging.getLogger(__name__)

TAG = "media_cleanup"
CRON_TAG = "media_cleanup_cron"
# Statuses of a sweep that did its work (a partial run is carried on next time).
SUCCESSFUL = [status for status, code in EXIT_CODES.items() if code == SUCCESS]
# A real sweep that ended so did nothing, or stopped midway; errors on some items a rerun may fix.
BROKEN = [CleanupRun.Status.FAILED, CleanupRun.Status.REFUSED, CleanupRun.Status.INTERRUPTED]


def check_crontab_binary(app_configs=None, **kwargs):
    """Warn when the crontab binary is missing: django-crontab would report success all the same."""
    if cron.crontab_binary():
        return []
    return [
        checks.Warning(
            f"The crontab binary {cron.crontab_command()[0]!r} is not installed, so the cleanup "
            "is not scheduled, whatever `manage.py crontab add` printed.",
            hint="Install cron (Debian: `apt-get install cron`, or `make system-deps`), then run "
            "`python manage.py crontab add`; CRONTAB_EXECUTABLE names another binary.",
            id="media_app.W001",
        )
    ]


def check_schedule_converts(app_configs=None, **kwargs):
    """Report a schedule that cannot be written for the host's zone today: `crontab add` refuses it."""
    try:
        cron.host_schedule()
    except schedule.ScheduleError as exc:
        return [
            checks.Error(
                str(exc),
                hint="Change MEDIA_CLEANUP_SCHEDULE (it is meant in TIME_ZONE), or set "
                "MEDIA_CLEANUP_HOST_TIME_ZONE when cron runs in another zone than /etc/localtime "
                "says; then run `make cron-install`.",
                id="media_app.E002",
            )
        ]
    return []


def check_cleanup_job_installed(app_configs=None, **kwargs):
    """Warn when the crontab has no line for the cleanup job as CRONJOBS defines it now."""
    job = cron.scheduled_job()
    if job is None or not cron.crontab_binary():
        return []  # not scheduled (E002 says when it cannot be), or W001 says why
    hint = (
        "Run `python manage.py crontab add` (again after changing MEDIA_CLEANUP_SCHEDULE or TIME_ZONE: "
        "a line added with another schedule is not found) as the user whose crontab it is "
        "(CRONTAB_EXECUTABLE)."
    )
    try:
        lines = cron.crontab_lines()
    except cron.CrontabUnreadable as exc:
        message = f"The crontab could not be read ({exc}), so the cleanup does not run on schedule."
    else:
        if cron.job_line(job, lines):
            return []
        message = (
            f"The crontab has no line for the cleanup job with the schedule {job[0]!r}, "
            "so the cleanup does not run on schedule."
        )
        moved = _moved_offsets(lines)
        if moved:
            message = (
                f"{moved}: the line still runs the cleanup, but not at the hour MEDIA_CLEANUP_SCHEDULE says."
            )
            hint = (
                "Run `python manage.py crontab add` again (`make cron-install`): it writes the line "
                "for today's offsets."
            )
    return [checks.Warning(message, hint=hint, id="media_app.W002")]


def _moved_offsets(lines):
    """Say how the offsets changed since this project's line was written, or return None."""
    try:
        now = cron.offsets()
    except schedule.ScheduleError:
        return None
    for line in cron.project_lines(lines):
        written = cron.written_for(line)
        if written and written != now:
            return (
                f"The crontab line was written for the host at UTC{schedule.utc_offset(written.host)} and "
                f"TIME_ZONE at UTC{schedule.utc_offset(written.schedule)}; they are now at "
                f"UTC{schedule.utc_offset(now.host)} and UTC{schedule.utc_offset(now.schedule)} "
                "(daylight saving time began or ended, or a zone setting changed)"
            )
    return None


def check_last_successful_run(app_configs=None, **kwargs):
    """Warn when no real sweep has succeeded within ``MEDIA_CLEANUP_ALERT_AFTER``."""
    try:
        alert_after = conf.alert_after()
    except ValueError as exc:
        return [checks.Error(str(exc), hint="Use 90s, 30m, 6h or 2d.", id="media_app.E001")]
    hint = (
        "See the run history in the admin and the log (MEDIA_CLEANUP_LOG_FILE); is the cron job "
        "installed (`python manage.py crontab show`) and cron running?"
    )
    try:
        last = (
            CleanupRun.objects.filter(dry_run=False, status__in=SUCCESSFUL, finished_at__isnull=False)
            .exclude(options__has_key=SELECTION_OPTION)
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
    except DatabaseError as exc:
        return [
            checks.Warning(
                f"The run history could not be read: {exc}",
                hint="Check DATABASE_URL, and run `python manage.py migrate`.",
                id="media_app.W003",
            )
        ]
    if last is None:
        message = "No real cleanup run has succeeded yet."
    elif timezone.now() - last > alert_after:
        message = (
            f"The last successful cleanup run finished at {timezone.localtime(last):%Y-%m-%d %H:%M %Z}, "
            f"more than {alert_after.total_seconds() / 3600:g} hours ago (MEDIA_CLEANUP_ALERT_AFTER)."
        )
    else:
        return []
    return [checks.Warning(message, hint=hint, id="media_app.W003")]


def check_last_run_outcome(app_configs=None, **kwargs):
    """Warn when the last real sweep ended failed or refused, or was interrupted."""
    try:
        last = (
            CleanupRun.objects.filter(dry_run=False)
            .exclude(options__has_key=SELECTION_OPTION)
            # A run in progress has no outcome yet, and a locked one never started.
            .exclude(status__in=[CleanupRun.Status.RUNNING, CleanupRun.Status.LOCKED])
            .order_by("-started_at")
            .only("pk", "status", "started_at", "message")
            .first()
        )
    except DatabaseError:
        return []  # W003 says the history cannot be read
    if last is None or last.status not in BROKEN:
        return []
    report = reverse("admin:media_app_cleanuprun_report", args=[last.pk])
    return [
        checks.Warning(
            f"The last cleanup run, started {timezone.localtime(last.started_at):%Y-%m-%d %H:%M %Z}, "
            f"ended {last.status}: {last.message or 'no message recorded'}",
            hint=f"See its report in the admin ({report}) and the log (MEDIA_CLEANUP_LOG_FILE); "
            "the warning clears when a real run ends otherwise.",
            id="media_app.W005",
        )
    ]


def check_log_folder(app_configs=None, **kwargs):
    """Warn when the log's folder is missing or not writable: cron could not even start the job."""
    folder = conf.log_file().parent
    if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return []
    return [
        checks.Warning(
            f"The folder of MEDIA_CLEANUP_LOG_FILE, {folder}, is missing or not writable: the crontab "
            "line appends to the log, and the shell refuses to start the job without it.",
            hint="Create it, writable by the user whose crontab runs the job, or set MEDIA_CLEANUP_LOG_FILE.",
            id="media_app.W004",
        )
    ]


def register():
    """Register the checks as deployment checks; called once from ``AppConfig.ready()``."""
    checks.register(check_crontab_binary, TAG, CRON_TAG, deploy=True)
    checks.register(check_schedule_converts, TAG, CRON_TAG, deploy=True)
    checks.register(check_cleanup_job_installed, TAG, CRON_TAG, deploy=True)
    checks.register(check_log_folder, TAG, CRON_TAG, deploy=True)
    checks.register(check_last_successful_run, TAG, deploy=True)
    checks.register(check_last_run_outcome, TAG, deploy=True)
