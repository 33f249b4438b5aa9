"""Mail the site's ADMINS when a real cleanup run ends badly: one message per run, never one per item.

``send_alert_run_ended`` listens to the sweep's ``run_ended`` (wired in ``apps.py``). Which
statuses alert is ``MEDIA_CLEANUP_ALERT_ON``; the message goes through Django's ``mail_admins``
(``ADMINS``, ``SERVER_EMAIL``, ``EMAIL_URL``) and holds the status, the figures, the first
errors, the host and a link to the run's report in the admin. An alert that cannot be sent is
one log line: it never changes the run's status or exit code.
"""

import logging
import sys

from django.core.mail import get_connection, mail_admins
from django.urls import reverse
from django.utils import timezone

from . import conf
from .cleanup.result import FIGURES, one_line, summary
from .models import CleanupRun

logger = logging.getLogger(__name__)

# A run keeps up to 100 error messages; the message shows the first few, its report all of them.
SHOWN_ERRORS = 10


def send_alert_run_ended(sender, run, using, **kwargs):
    """Mail ADMINS about a real run that ended with one of the statuses of ``MEDIA_CLEANUP_ALERT_ON``."""
    if run.dry_run or run.status not in conf.alert_on() or not conf.admins():
        return
    subject, message = alert_subject(run), alert_message(run)
    try:
        # The console backend writes to stderr, beside the log: `cleanup_media --json` keeps
        # stdout for its JSON.
        mail_admins(subject, message, connection=get_connection(stream=sys.stderr))
    except Exception as exc:
        # Whatever the backend raises (smtplib's errors, a refused connection, a time-out, a
        # folder it cannot write), the run is over and recorded: say so in one line.
        logger.error(
            "Could not send the alert of cleanup run %s (%s) to ADMINS: %s: %s",
            run.pk,
            run.status,
            type(exc).__name__,
            one_line(exc),
        )
    else:
        logger.info("Sent the alert of cleanup run %s (%s) to ADMINS", run.pk, run.status)


def alert_subject(run):
    """Return the subject (after ``EMAIL_SUBJECT_PREFIX``): the status and the host."""
    return f"Cleanup run {run.status} on {run.host or 'an unknown host'}"


def alert_message(run):
    """Return the message's text: what happened, where, the link to the report, the figures and errors."""
    finished = moment(run.finished_at) if run.finished_at else "not recorded"
    lines = [
        f"A cleanup run ended with the status {run.status}.",
        "",
        summary(run),
        "",
        f"Status:   {run.status}",
        f"Host:     {run.host or 'unknown'} (process {run.pid or 'unknown'})",
        f"Trigger:  {run.trigger}",
        f"Started:  {moment(run.started_at)}",
        f"Finished: {finished}",
        f"Report:   {report_link(run)}",
        "",
        "Figures:",
        *figure_lines(run),
    ]
    if run.errors:
        shown = run.errors[:SHOWN_ERRORS]
        lines += ["", f"First errors ({len(shown)} of {run.error_count}):"]
        lines += [f"  {error}" for error in shown]
    return "\n".join(lines) + "\n"


def report_link(run):
    """Return the URL of the run's report in the admin, or its path when ``SITE_URL`` is unset."""
    path = reverse("admin:media_app_cleanuprun_report", args=[run.pk])
    site = conf.site_url()
    if site:
        return site.rstrip("/") + path
    return f"{path} (SITE_URL is unset: set it to the site's address for a full link)"


def figure_lines(run):
    """Return a line per figure of the run, in the result's order: "  files checked:   1204"."""
    labels = {name: f"{CleanupRun._meta.get_field(name).verbose_name}:" for name in FIGURES}
    width = max(len(label) for label in labels.values())
    return [f"  {labels[name]:<{width}} {getattr(run, name)}" for name in FIGURES]


def moment(when):
    """Return a time as the site's zone shows it, e.g. ``2026-11-27 03:00:04 +04``."""
    return f"{timezone.localtime(when):%Y-%m-%d %H:%M:%S %Z}"
