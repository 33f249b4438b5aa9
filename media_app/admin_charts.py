"""The charts atop *Cleanup runs*: the trend of the sweeps the history keeps, from one query.

Real runs by default; the list's filter "By dry run: Yes" charts the previews instead, never
both, since each preview is usually followed by its real run and would double every point.
Neither the action on selected media (it lists no storage) nor a run that found the lock held
(it did nothing) is a point; a run still going has no figures yet.
"""

import logging
from datetime import timedelta

from django.template.response import TemplateResponse
from django.utils import timezone

from . import conf
from .charts import Kind, Marker, Series, Timeline, line_chart
from .cleanup.options import SELECTION_OPTION
from .models import CleanupRun

logger = logging.getLogger(__name__)

Status = CleanupRun.Status
# The figures of these runs stop where the run stopped: drawn apart from the line, so that a run
# that failed before it listed the storage never reads as an emptied storage.
MARKERS = {
    Status.FAILED: Marker("cross", "#D55E00", "failed"),
    Status.REFUSED: Marker("triangle", "#CC79A7", "refused by the safety cap"),
    Status.INTERRUPTED: Marker("square", "#7F7F7F", "interrupted"),
}
# Each chart: slug, title, kind, what a count counts, and its lines as (column, label).
CHARTS = [
    ("storage-files", "Files in storage", Kind.COUNT, "files", [("storage_files", "files under uploads/")]),
    (
        "storage-bytes",
        "Size of the storage",
        Kind.BYTES,
        "",
        [("storage_bytes", "uploads/"), ("quarantine_bytes", "quarantine")],
    ),
    (
        "found",
        "Found by each run",
        Kind.COUNT,
        "rows and files",
        [
            ("orphaned_records", "orphaned rows"),
            ("orphaned_files", "orphaned files"),
            ("missing_files", "missing files"),
        ],
    ),
    (
        "removed",
        "Removed by each run",
        Kind.COUNT,
        "rows and files",
        [("deleted_records", "rows"), ("deleted_files", "files")],
    ),
    ("freed", "Bytes freed by each run", Kind.BYTES, "", [("bytes_freed", "freed")]),
    ("duration", "Duration of each run", Kind.SECONDS, "", [("duration_seconds", "duration")]),
    ("errors", "Errors of each run", Kind.COUNT, "errors", [("error_count", "errors")]),
]
COLUMNS = ["started_at", "status", *(column for *_, lines in CHARTS for column, _ in lines)]
# Enough for a run every two hours all the retention long; a sweep run every minute would
# otherwise make a page of megabytes whose lines no one could tell apart.
MAX_RUNS = 1000
# The parameter of the list's filter "By dry run".
DRY_RUN_PARAMETER = "dry_run__exact"


def run_charts(request):
    """Return the charts' context: the runs of the history's retention, fetched in one query."""
    previews = request.GET.get(DRY_RUN_PARAMETER) == "1"
    # A retention of 0 keeps the last run until the next one: chart the last day at least.
    days = max(conf.history_days(), 1)
    now = timezone.now()
    latest = (
        CleanupRun.objects.filter(started_at__gte=now - timedelta(days=days), dry_run=previews)
        .exclude(status__in=[Status.RUNNING, Status.LOCKED])
        .exclude(options__has_key=SELECTION_OPTION)
        .order_by("-started_at")
        .values_list(*COLUMNS)
    )
    # One more than charted tells whether older runs are left out, without a count.
    fetched = list(latest[: MAX_RUNS + 1])
    rows = fetched[:MAX_RUNS][::-1]
    zone = timezone.get_current_timezone()
    context = {
        "charts": [],
        "days": days,
        "previews": previews,
        "runs": len(rows),
        "more": len(fetched) > MAX_RUNS,
        "zone": str(zone),
    }
    if not rows:
        return context
    columns = dict(zip(COLUMNS, zip(*rows, strict=True), strict=True))
    timeline = Timeline(
        times=columns["started_at"],
        marks=tuple(status if status in MARKERS else "" for status in columns["status"]),
        markers=MARKERS,
        zone=zone,
        now=now,
    )
    context["charts"] = [
        line_chart(
            timeline, slug, title, kind, [Series(label, columns[column]) for column, label in lines], noun
        )
        for slug, title, kind, noun, lines in CHARTS
    ]
    return context


class RunCharts:
    """Open the run history's list with the charts of its runs."""

    def changelist_view(self, request, extra_context=None):
        """Render the list; add the charts to the context when it is a page."""
        response = super().changelist_view(request, extra_context)
        # A redirect (a bad filter, say) has no context, and needs no query.
        if isinstance(response, TemplateResponse):
            response.context_data["run_charts"] = run_charts(request)
        return response
