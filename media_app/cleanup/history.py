"""The run history: each run's ``CleanupRun`` row, written at its start, as it goes and at its end.

``run_ended`` is sent once a run's end is recorded, and for each run found ``interrupted``
(killed before it could record its end): the alerts and the metrics listen to it, so that the
sweep knows nothing of them.
"""

import logging
import os
import socket
from datetime import timedelta

from django.db import DatabaseError, connections
from django.dispatch import Signal
from django.utils import timezone

from .. import conf
from ..models import CleanupRun
from .result import Status

logger = logging.getLogger(__name__)

# Sent with ``run`` (the ``CleanupRun`` row as recorded) and ``using`` (its database alias).
run_ended = Signal()
INTERRUPTED_MESSAGE = "stopped before it finished (killed, or its host went away)"


class RunHistory:
    """Write one run's ``CleanupRun`` row from its ``CleanupResult`` and ``CleanupOptions``."""

    def __init__(self, result, options):
        self.result = result
        self.using = options.using
        self.now = options.now
        self.fields = {
            "id": result.run_id,
            "trigger": options.trigger,
            "dry_run": options.dry_run,
            "options": options.recorded(),
            "started_at": timezone.now(),
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
        }

    def _runs(self):
        return CleanupRun.objects.using(self.using)

    def record_locked(self):
        """Record a run that did not start: another run held the lock."""
        self._runs().create(
            **self.fields, status=Status.LOCKED, finished_at=timezone.now(), message=self.result.message
        )

    def start(self):
        """Record the run as running, and any other running run as interrupted."""
        # Holding the lock, any other "running" row belongs to a run that died midway.
        running = list(self._runs().filter(status=Status.RUNNING).values_list("pk", flat=True))
        if running:
            self._runs().filter(pk__in=running).update(status=Status.INTERRUPTED, message=INTERRUPTED_MESSAGE)
            logger.warning("Marked %d earlier run(s) as interrupted", len(running))
        self._runs().create(**self.fields, status=Status.RUNNING)
        for run in self._runs().filter(pk__in=running):
            announce(run, self.using)

    def progress(self):
        """Record the figures so far."""
        self._runs().filter(pk=self.result.run_id).update(**self.result.figures())

    def finish(self):
        """Record the run's end: its status, figures, errors and sample."""
        values = {
            **self.result.figures(),
            "status": self.result.status,
            "finished_at": timezone.now(),
            "duration_seconds": self.result.duration_seconds,
            "message": self.result.message,
            "errors": self.result.errors,
            "sample": self.result.sample,
            "restorable": self.result.restorable,
        }
        for attempt in (1, 2):
            try:
                self._runs().filter(pk=self.result.run_id).update(**values)
                run = self._runs().get(pk=self.result.run_id)
            except DatabaseError as exc:
                # The connection may have died with the run: reconnect once.
                connections[self.using].close()
                if attempt == 2:
                    logger.error("Could not record the run's end in the history: %s", exc)
            else:
                announce(run, self.using)
                return

    def forget_quarantine(self, run_id):
        """Record that a run's quarantine was purged: it can no longer be restored."""
        self._runs().filter(pk=run_id).update(restorable=False)

    def purge(self):
        """Delete history rows older than ``MEDIA_CLEANUP_HISTORY_DAYS``; return how many."""
        cutoff = self.now - timedelta(days=conf.history_days())
        deleted, _ = self._runs().filter(started_at__lt=cutoff).exclude(pk=self.result.run_id).delete()
        return deleted


def announce(run, using):
    """Send ``run_ended`` for a run whose end is recorded; a listener's failure is logged, never raised."""
    for receiver, response in run_ended.send_robust(sender=CleanupRun, run=run, using=using):
        if isinstance(response, Exception):
            logger.error(
                "A listener of the run's end (%s) failed: %s: %s",
                getattr(receiver, "__qualname__", receiver),
                type(response).__name__,
                " ".join(str(response).split()),
            )
