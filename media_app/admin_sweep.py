"""The whole sweep from the admin: a preview, its confirmation, and a page that follows a run.

Runs go to a process of their own (``background_runs``), so every request stays short; the
report page reloads itself until the run's history row is no longer ``running``. Only users
who may delete media preview or run; only POST starts a run (CSRF-protected by the admin).
"""

import logging
import socket
import time
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import conf
from .background_runs import log_excerpt, process_alive, start_cleanup_process
from .cleanup.history import announce
from .cleanup.result import FIGURES, summary
from .durations import duration_text, parse_duration
from .models import CleanupRun

logger = logging.getLogger(__name__)

# Run ids this browser session started and has not been told the end of: [start time, process id].
SESSION_KEY = "media_cleanup_started_runs"
# A run whose history row has not appeared by then did not start (even if its process lives on,
# e.g. on another host); its output is in the log.
START_TIMEOUT = 60
REFRESH_SECONDS = 2
Status = CleanupRun.Status


class SweepForm(forms.Form):
    """The options of a preview, which its confirmation reuses."""

    min_age = forms.CharField(
        label="Grace period for files",
        max_length=20,
        help_text="Files younger than this are kept: 0, 3600 (seconds), 90s, 30m, 6h, 2d.",
    )

    def clean_min_age(self):
        try:
            return parse_duration(self.cleaned_data["min_age"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


def confirmable(run):
    """Return True for a finished preview that found something to remove."""
    finished_well = run.status in (Status.OK, Status.ERRORS)
    return run.dry_run and finished_well and bool(run.deleted_records or run.deleted_files)


class SweepPages:
    """Add the sweep page, the confirmation and the run report to the run history's admin."""

    def get_urls(self):
        admin_view = self.admin_site.admin_view
        return [
            path("sweep/", admin_view(self.sweep_view), name="media_app_cleanuprun_sweep"),
            path("<uuid:run_id>/report/", admin_view(self.report_view), name="media_app_cleanuprun_report"),
            path(
                "<uuid:run_id>/confirm/",
                admin_view(require_POST(self.confirm_view)),
                name="media_app_cleanuprun_confirm",
            ),
            *super().get_urls(),
        ]

    def sweep_view(self, request):
        """Show the preview form; on POST, start a dry run and follow it."""
        require_delete_media(request)
        try:
            initial = {"min_age": duration_text(conf.min_age())}
        except ValueError as exc:
            initial = {}
            self.message_user(request, str(exc), messages.ERROR)
        form = SweepForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            return self.start(request, dry_run=True, min_age=form.cleaned_data["min_age"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Sweep media storage",
            "form": form,
            "log_file": conf.log_file(),
        }
        return TemplateResponse(request, "admin/media_app/cleanuprun/sweep.html", context)

    def confirm_view(self, request, run_id):
        """Start the real run with the options of the preview ``run_id``."""
        require_delete_media(request)
        preview = get_object_or_404(CleanupRun, pk=run_id)
        if not confirmable(preview):
            self.message_user(
                request,
                "Only a finished preview that found something to remove can be confirmed.",
                messages.ERROR,
            )
            return redirect("admin:media_app_cleanuprun_report", run_id=preview.pk)
        min_age = timedelta(seconds=preview.options["min_age"])
        return self.start(request, dry_run=False, min_age=min_age)

    def start(self, request, *, dry_run, min_age):
        try:
            run_id, pid = start_cleanup_process(dry_run=dry_run, min_age=min_age)
        except OSError as exc:
            logger.error("Could not start the cleanup: %s", exc)
            self.message_user(request, f"Could not start the cleanup: {exc}", messages.ERROR)
            return redirect("admin:media_app_cleanuprun_sweep")
        now = time.time()
        started = {pk: entry for pk, entry in started_runs(request).items() if now - entry[0] < 86400}
        request.session[SESSION_KEY] = {**started, run_id: [now, pid]}
        return redirect("admin:media_app_cleanuprun_report", run_id=run_id)

    def report_view(self, request, run_id):
        """Show a run's figures, sample and errors; reload while it runs; offer to confirm a preview."""
        # Those who may start runs may follow them, even without access to the history list.
        if not (self.has_view_permission(request) or can_delete_media(request)):
            raise PermissionDenied
        run_id = str(run_id)
        run = CleanupRun.objects.filter(pk=run_id).first()
        started = started_runs(request)
        if run is None and run_id not in started:
            raise Http404("No such cleanup run.")
        if run is None:
            started_at, pid = started[run_id]
            ended = pid is not None and not process_alive(pid, run_id)
            did_not_start = ended or time.time() - started_at > START_TIMEOUT
        else:
            did_not_start = False
            run = notice_death(run)
        in_progress = run.status == Status.RUNNING if run is not None else not did_not_start
        if run is not None and run.status != Status.RUNNING and run_id in started:
            self.announce(request, run)
            request.session[SESSION_KEY] = {pk: at for pk, at in started.items() if pk != run_id}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": report_title(run),
            "run": run,
            "run_id": run_id,
            "did_not_start": did_not_start,
            "refresh": REFRESH_SECONDS if in_progress else None,
            "figures": figures(run),
            "grace": duration_text(timedelta(seconds=run.options.get("min_age", 0))) if run else "",
            "can_confirm": run is not None and confirmable(run) and can_delete_media(request),
            "can_restore": run is not None
            and not run.dry_run
            and request.user.has_perm("media_app.add_media")
            and run.restorable,
            "log_file": conf.log_file(),
            "log_excerpt": log_excerpt(run_id) if did_not_start or is_dead(run) else [],
            "took": readable_duration(run.duration_seconds)
            if run and run.duration_seconds is not None
            else "",
        }
        return TemplateResponse(request, "admin/media_app/cleanuprun/report.html", context)

    def announce(self, request, run):
        """Tell the user, once, how a run they started ended."""
        kind = "preview" if run.dry_run else "run"
        level = {Status.OK: messages.SUCCESS, Status.PARTIAL: messages.WARNING}.get(
            run.status, messages.ERROR
        )
        # The history row carries the result's figures under the same names, so summary() reads it.
        self.message_user(request, f"Cleanup {kind} finished: {summary(run)}", level)


def started_runs(request):
    """Return ``{run id: [start time, process id]}`` of the runs this browser session started."""
    entries = request.session.get(SESSION_KEY, {})
    # Entries written before process ids were kept hold the start time alone.
    return {pk: entry if isinstance(entry, list) else [entry, None] for pk, entry in entries.items()}


def is_dead(run):
    """Return True for a run that ended without recording its end."""
    return run is not None and run.status == Status.INTERRUPTED


def notice_death(run):
    """Mark a ``running`` run of this host whose process is gone as interrupted; return the row.

    Its process was killed or crashed before it could record its end. A run of another host
    is left to the next sweep, which marks it once it holds the lock.
    """
    if run.status != Status.RUNNING or run.host != socket.gethostname():
        return run
    if process_alive(run.pid, run.run_id if run.trigger == CleanupRun.Trigger.ADMIN else None):
        return run
    message = "its process ended without recording its end (killed, or it crashed); see the log"
    updated = CleanupRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
        status=Status.INTERRUPTED, finished_at=timezone.now(), message=message
    )
    run = CleanupRun.objects.get(pk=run.pk)
    if updated:
        logger.warning("Cleanup run %s: %s", run.pk, message)
        announce(run, DEFAULT_DB_ALIAS)
    return run


def readable_duration(seconds):
    """Return a duration as a person reads it: "0.4 s", "12 s", "3 min 5 s", "2 h 10 min", "1 d 3 h"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            rest //= smaller_size
            return f"{whole} {unit} {rest} {smaller}" if rest else f"{whole} {unit}"
    return f"{seconds} s"


def report_title(run):
    if run is None:
        return "Cleanup run"
    kind = "preview" if run.dry_run else "run"
    return f"Cleanup {kind} of {timezone.localtime(run.started_at):%Y-%m-%d %H:%M}"


def figures(run):
    """Return ``[(label, value)]`` of a run's figures, in the result's order."""
    if run is None:
        return []
    return [(CleanupRun._meta.get_field(name).verbose_name, getattr(run, name)) for name in FIGURES]


def can_delete_media(request):
    return request.user.has_perm("media_app.delete_media")


def require_delete_media(request):
    """Refuse (403) a user who may not delete media: the sweep deletes them."""
    if not can_delete_media(request):
        raise PermissionDenied
