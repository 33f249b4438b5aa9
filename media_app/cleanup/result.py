"""What a sweep found and did: its figures, the kinds of items it reports, its status and summary.

The figures are defined once, as the fields of ``Figures``: ``CleanupRun`` has a column of the
same name for each, and ``cleanup_media --json`` prints them.
"""

import dataclasses
from enum import StrEnum

from django.template.defaultfilters import pluralize

from ..models import CleanupRun
from .exit_codes import FAILURE, SUCCESS, TRY_AGAIN_LATER

Status = CleanupRun.Status

# Precedence when several apply: the first wins.
STATUS_PRECEDENCE = [Status.LOCKED, Status.REFUSED, Status.FAILED, Status.ERRORS, Status.PARTIAL, Status.OK]
EXIT_CODES = {
    Status.OK: SUCCESS,
    Status.PARTIAL: SUCCESS,  # stopped by --time-limit: the next run carries on
    Status.ERRORS: FAILURE,
    Status.REFUSED: FAILURE,
    Status.FAILED: FAILURE,
    Status.LOCKED: TRY_AGAIN_LATER,
}
MAX_ERROR_MESSAGES = 100
SAMPLE_SIZE = 20


class Item(StrEnum):
    """The kind of a name a run reports: in ``-v 2`` output, its log and the sample it keeps."""

    STALE_TYPE = "stale type"
    REFUSED_PATH = "refused path"
    ORPHANED_RECORD = "orphaned record"
    MISSING_FILE = "missing file"
    YOUNG_FILE = "young file"
    ORPHANED_FILE = "orphaned file"
    KEPT_LAYOUT_ENTRY = "kept entry of uploads/"
    REMOVED_RECORD = "removed record"
    WOULD_REMOVE_RECORD = "would remove record"
    REMOVED_FILE = "removed file"
    QUARANTINED_FILE = "quarantined file"
    WOULD_REMOVE_FILE = "would remove file"
    ALREADY_GONE = "already gone"
    PURGED_RUN = "purged quarantined run"
    WOULD_PURGE_RUN = "would purge quarantined run"


@dataclasses.dataclass(kw_only=True)
class Figures:
    """The counts of one run, in the order the JSON output and the admin's report show them."""

    records_checked: int = 0
    files_checked: int = 0
    orphaned_records: int = 0
    orphaned_files: int = 0
    missing_files: int = 0
    stale_type_records: int = 0
    refused_paths: int = 0
    unreadable_names: int = 0
    young_files: int = 0
    deleted_records: int = 0
    deleted_files: int = 0
    already_gone: int = 0
    bytes_freed: int = 0
    quarantined_bytes: int = 0
    purged_runs: int = 0
    purged_bytes: int = 0
    error_count: int = 0
    storage_files: int = 0
    storage_bytes: int = 0
    quarantine_bytes: int = 0


FIGURES = tuple(field.name for field in dataclasses.fields(Figures))


@dataclasses.dataclass(kw_only=True)
class CleanupResult(Figures):
    """One run: its figures, the first error messages and names of each kind, and its status."""

    run_id: str = ""
    dry_run: bool = False
    errors: list = dataclasses.field(default_factory=list)
    sample: dict = dataclasses.field(default_factory=dict)
    duration_seconds: float = 0.0
    message: str = ""
    # True once the run opened its quarantine: ``restore_media`` can take it back.
    restorable: bool = False
    # Conditions met during the run; ``status`` picks the one that wins.
    conditions: set = dataclasses.field(default_factory=set)

    @property
    def status(self):
        for status in STATUS_PRECEDENCE:
            if status in self.conditions:
                return status
        return Status.ERRORS if self.error_count else Status.OK

    @property
    def exit_code(self):
        return EXIT_CODES[self.status]

    def add_error(self, message):
        """Count a failed operation that a rerun may fix, keeping the first messages."""
        self.error_count += 1
        if len(self.errors) < MAX_ERROR_MESSAGES:
            self.errors.append(message)

    def add_sample(self, kind, name):
        """Keep the first few names of each kind, for the admin's preview."""
        names = self.sample.setdefault(kind, [])
        if len(names) < SAMPLE_SIZE:
            names.append(name)

    def figures(self):
        """Return the figures as the column values of the run's history row."""
        return {name: getattr(self, name) for name in FIGURES}

    def as_dict(self):
        """Return the JSON object that ``cleanup_media --json`` prints."""
        return {
            "run_id": self.run_id,
            "status": str(self.status),
            "dry_run": self.dry_run,
            **self.figures(),
            "errors": self.errors,
            "duration_seconds": round(self.duration_seconds, 3),
            "message": self.message,
        }


def summary(result):
    """Return a one-paragraph account of a run for logs, the terminal and the admin.

    It reads a ``CleanupResult`` or a ``CleanupRun`` row (the same names). A dry run never
    mentions a restore: it quarantined nothing.
    """
    quarantined, freed = counted(result.quarantined_bytes, "byte"), counted(result.bytes_freed, "byte")
    if result.dry_run:
        verb, purged = "would remove", "would purge"
        where = (
            f"would move {quarantined} to the quarantine"
            if result.quarantined_bytes
            else f"would free {freed}"
        )
    elif result.quarantined_bytes:
        verb, purged = "removed", "purged"
        where = f"{quarantined} to the quarantine, restorable with restore_media {result.run_id}"
    else:
        verb, purged, where = "removed", "purged", f"{freed} freed"
    found = ", ".join(
        counted(getattr(result, figure), noun)
        for figure, noun in [
            ("orphaned_records", "orphaned row"),
            ("orphaned_files", "orphaned file"),
            ("missing_files", "missing file"),
        ]
    )
    text = (
        f"{result.status}{' (dry run)' if result.dry_run else ''}: "
        f"checked {counted(result.records_checked, 'row')} and {counted(result.files_checked, 'file')}; "
        f"found {found}; {verb} {counted(result.deleted_records, 'row')} and "
        f"{counted(result.deleted_files, 'file')} ({where}); {counted(result.error_count, 'error')}"
    )
    if result.purged_runs:
        runs, size = counted(result.purged_runs, "quarantined run"), counted(result.purged_bytes, "byte")
        text += f"; {purged} {runs} ({size})"
    return f"{text}. {result.message}" if result.message else text


def counted(number, noun):
    """Return ``number`` with ``noun`` in the singular or the plural: "1 file", "2 files"."""
    return f"{number} {noun}{pluralize(number)}"


def one_line(exc):
    """Return an exception's text on one line (database drivers' messages span several)."""
    return " ".join(str(exc).split())
