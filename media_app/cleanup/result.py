"""What a sweep found and did, its status, and the exit code each status maps to."""

import dataclasses

from ..models import CleanupRun

Status = CleanupRun.Status

# Precedence when several apply: the first wins.
STATUS_PRECEDENCE = [Status.LOCKED, Status.REFUSED, Status.FAILED, Status.ERRORS, Status.PARTIAL, Status.OK]
EXIT_CODES = {
    Status.OK: 0,
    Status.PARTIAL: 0,
    Status.ERRORS: 1,
    Status.REFUSED: 1,
    Status.FAILED: 1,
    Status.LOCKED: 75,  # EX_TEMPFAIL: try again later
}
MAX_ERROR_MESSAGES = 100
SAMPLE_SIZE = 20


@dataclasses.dataclass
class CleanupResult:
    """The figures of one run; the same names as the columns of ``CleanupRun`` and the JSON keys."""

    run_id: str = ""
    dry_run: bool = False
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
    errors: list = dataclasses.field(default_factory=list)
    sample: dict = dataclasses.field(default_factory=dict)
    duration_seconds: float = 0.0
    message: str = ""
    # Conditions met during the run; ``status`` picks the one that wins.
    conditions: set = dataclasses.field(default_factory=set)

    FIGURES = (
        "records_checked",
        "files_checked",
        "orphaned_records",
        "orphaned_files",
        "missing_files",
        "stale_type_records",
        "refused_paths",
        "unreadable_names",
        "young_files",
        "deleted_records",
        "deleted_files",
        "already_gone",
        "bytes_freed",
        "quarantined_bytes",
        "purged_runs",
        "purged_bytes",
        "error_count",
    )

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
        return {name: getattr(self, name) for name in self.FIGURES}

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


def one_line(exc):
    """Return an exception's text on one line (database drivers' messages span several)."""
    return " ".join(str(exc).split())
