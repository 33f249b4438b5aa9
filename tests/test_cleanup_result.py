"""A run's result: its figures held against the history's columns and the documented JSON; its summary."""

import re
from pathlib import Path

import pytest
from django.db import models

from media_app.cleanup.result import EXIT_CODES, FIGURES, STATUS_PRECEDENCE, CleanupResult, Item, summary
from media_app.models import CleanupRun

SWEEP_DOC = (Path(__file__).resolve().parents[1] / "docs" / "sweep.md").read_text()


def documented_json_keys():
    """Return the keys docs/sweep.md promises in ``cleanup_media --json``, in its order."""
    paragraph = re.search(r"^JSON keys: (.*?)\.$", SWEEP_DOC, re.MULTILINE | re.DOTALL).group(1)
    return re.findall(r"`(\w+)`", paragraph)


def documented_exit_codes():
    """Return ``{status: exit code}`` as the table of docs/sweep.md gives them."""
    return {
        status: int(code) for status, code in re.findall(r"^\| `(\w+)` \| (\d+) \|", SWEEP_DOC, re.MULTILINE)
    }


def test_the_json_output_has_exactly_the_documented_keys_in_their_order():
    assert len(documented_json_keys()) == 26  # 23, then the storage's size (3)
    assert list(CleanupResult().as_dict()) == documented_json_keys()


def test_the_history_has_a_column_for_each_figure_and_no_other_count():
    counts = [
        field.name
        for field in CleanupRun._meta.concrete_fields
        if isinstance(field, models.PositiveIntegerField | models.PositiveBigIntegerField)
        and field.default == 0
    ]

    assert counts == list(FIGURES)


def test_every_figure_is_a_count_that_starts_at_zero():
    assert CleanupResult().figures() == dict.fromkeys(FIGURES, 0)


def test_each_status_exits_with_the_documented_code():
    codes = {str(status): CleanupResult(conditions={status}).exit_code for status in STATUS_PRECEDENCE}

    assert codes == documented_exit_codes()
    assert set(EXIT_CODES) == set(STATUS_PRECEDENCE)


def test_the_item_kinds_keep_their_stored_names():
    """History rows already stored name their sample's kinds so; the admin shows them as they are."""
    assert sorted(Item) == sorted(
        [
            "already gone",
            "kept entry of uploads/",
            "missing file",
            "orphaned file",
            "orphaned record",
            "purged quarantined run",
            "quarantined file",
            "refused path",
            "removed file",
            "removed record",
            "stale type",
            "would purge quarantined run",
            "would remove file",
            "would remove record",
            "young file",
        ]
    )
    assert f"{Item.ORPHANED_FILE}: x" == "orphaned file: x"


def test_a_dry_runs_summary_never_promises_a_restore(settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    dry = CleanupResult(run_id="r1", dry_run=True, deleted_files=2, quarantined_bytes=10, purged_runs=1)
    real = CleanupResult(run_id="r2", deleted_files=2, quarantined_bytes=10)

    assert "restore" not in summary(dry)
    assert "would move 10 bytes to the quarantine" in summary(dry)
    assert "would purge 1 quarantined run" in summary(dry)
    assert "restorable with restore_media r2" in summary(real)


@pytest.mark.parametrize(
    "figures, text",
    [
        ({"missing_files": 1, "error_count": 1}, "1 missing file; would remove 0 rows"),
        ({"missing_files": 2, "deleted_records": 1}, "2 missing files; would remove 1 row and 0 files"),
        ({"records_checked": 1, "files_checked": 1}, "checked 1 row and 1 file;"),
    ],
)
def test_the_summary_says_one_in_the_singular(figures, text):
    assert text in summary(CleanupResult(dry_run=True, **figures))


def test_the_summary_of_an_error_is_singular_too():
    assert summary(CleanupResult(error_count=1)).endswith("; 1 error")
