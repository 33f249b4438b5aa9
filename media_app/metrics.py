"""Metrics for Prometheus: the last real run and the last dry run, in node_exporter's textfile format.

``write_metrics_run_ended`` listens to ``run_ended``: once a run's end is recorded, it rewrites
``MEDIA_CLEANUP_METRICS_FILE`` from the run history, so that a dry run never erases the series
of the last real run (the label ``dry_run`` tells them apart). prometheus_client writes the file
beside its place and renames it there: a reader never sees half a file. A file that cannot be
written is one log line; the run is never changed by it.
"""

import logging

from . import conf
from .checks import SUCCESSFUL
from .cleanup.options import SELECTION_OPTION
from .cleanup.result import one_line
from .models import CleanupRun

logger = logging.getLogger(__name__)

Status = CleanupRun.Status
# The statuses a run ends with. A locked run did nothing: it is not the last run here.
ENDED = [status for status in Status if status not in (Status.RUNNING, Status.LOCKED)]
# Each figure of the run exported as it is: metric name, the history's column, its help.
FIGURES = [
    ("media_cleanup_orphaned_records", "orphaned_records", "Media rows whose owner was gone."),
    ("media_cleanup_orphaned_files", "orphaned_files", "Files under uploads/ that nothing referenced."),
    ("media_cleanup_missing_files", "missing_files", "Files that live rows referenced but were not stored."),
    ("media_cleanup_deleted_records", "deleted_records", "Media rows removed (a dry run: would remove)."),
    ("media_cleanup_deleted_files", "deleted_files", "Files removed (a dry run: would remove)."),
    ("media_cleanup_errors", "error_count", "Operations that failed."),
    ("media_cleanup_bytes_freed", "bytes_freed", "Bytes freed: deleted files and purged quarantine."),
    ("media_cleanup_storage_files", "storage_files", "Files the run listed under uploads/."),
    ("media_cleanup_storage_bytes", "storage_bytes", "Bytes of the files the run listed under uploads/."),
    (
        "media_cleanup_quarantine_bytes",
        "quarantine_bytes",
        "Bytes the quarantine held at the run's end (dry: would hold).",
    ),
]


def write_metrics_run_ended(sender, using, **kwargs):
    """Rewrite the metrics file, when one is set, from the run history of ``using``."""
    path = conf.metrics_file()
    if not path:
        return
    try:
        write_metrics(path, using)
    except OSError as exc:
        logger.error("Cannot write the metrics file %s: %s", path, exc.strerror or one_line(exc))


def sweeps(using, dry_run):
    """Return the ended runs of one kind; a run limited to the admin's selection is no sweep."""
    runs = CleanupRun.objects.using(using).filter(dry_run=dry_run, status__in=ENDED)
    return runs.exclude(options__has_key=SELECTION_OPTION)


def write_metrics(path, using):
    """Write the metrics of the last real run and the last dry run to ``path``, replacing the file."""
    # Imported here: prometheus_client takes some 45 ms to import, which every process of the
    # site would pay as it starts, while only a run with a metrics file needs it.
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name, documentation, *labels):
        return Gauge(name, documentation, ["dry_run", *labels], registry=registry)

    last_run = gauge(
        "media_cleanup_last_run_timestamp_seconds", "When the last run ended (found interrupted: began)."
    )
    last_success = gauge(
        "media_cleanup_last_success_timestamp_seconds", "When the last successful run ended; 0: none yet."
    )
    duration = gauge("media_cleanup_run_duration_seconds", "How long the last run took; NaN when unknown.")
    status = gauge(
        "media_cleanup_last_run_status", "1 for the last run's status, 0 for the others.", "status"
    )
    figures = [(gauge(name, documentation), column) for name, column, documentation in FIGURES]
    for dry_run in (False, True):
        runs = sweeps(using, dry_run)
        run = runs.order_by("-started_at").first()
        if run is None:
            continue
        label = "true" if dry_run else "false"
        last_run.labels(label).set((run.finished_at or run.started_at).timestamp())
        succeeded = (
            runs.filter(status__in=SUCCESSFUL, finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        last_success.labels(label).set(succeeded.timestamp() if succeeded else 0)
        duration.labels(label).set(float("nan") if run.duration_seconds is None else run.duration_seconds)
        for ended in ENDED:
            status.labels(label, ended).set(int(run.status == ended))
        for metric, column in figures:
            metric.labels(label).set(getattr(run, column))
    write_to_textfile(path, registry)
