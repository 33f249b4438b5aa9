"""The metrics file for Prometheus: written at each run's end from the run history, never changing a run."""

import logging
import math
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.lock import cleanup_lock
from media_app.models import CleanupRun
from tests import factories
from tests.backends import later
from tests.conftest import child_environment, require_tool

pytestmark = pytest.mark.django_db(transaction=True)

# The contract with the dashboards and alerting rules: exactly these names.
FIGURES = {
    "media_cleanup_orphaned_records": "orphaned_records",
    "media_cleanup_orphaned_files": "orphaned_files",
    "media_cleanup_missing_files": "missing_files",
    "media_cleanup_deleted_records": "deleted_records",
    "media_cleanup_deleted_files": "deleted_files",
    "media_cleanup_errors": "error_count",
    "media_cleanup_bytes_freed": "bytes_freed",
    "media_cleanup_storage_files": "storage_files",
    "media_cleanup_storage_bytes": "storage_bytes",
    "media_cleanup_quarantine_bytes": "quarantine_bytes",
}
NAMES = {
    "media_cleanup_last_run_timestamp_seconds",
    "media_cleanup_last_success_timestamp_seconds",
    "media_cleanup_run_duration_seconds",
    "media_cleanup_last_run_status",
    *FIGURES,
}
STATUSES = {"ok", "partial", "errors", "failed", "refused", "interrupted"}


@pytest.fixture
def metrics_file(tmp_path, settings):
    """Point MEDIA_CLEANUP_METRICS_FILE at a file in a folder of its own."""
    folder = tmp_path / "textfile"
    folder.mkdir()
    settings.MEDIA_CLEANUP_METRICS_FILE = str(folder / "media_cleanup.prom")
    return folder / "media_cleanup.prom"


def read_metrics(path):
    """Return ``{name: {labels: value}}`` as prometheus_client's own parser reads the file."""
    metrics = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            metrics.setdefault(sample.name, {})[labels] = sample.value
    return metrics


def series(metrics, name, dry_run):
    """Return the value of a metric labelled only with ``dry_run``."""
    return metrics[name][(("dry_run", "true" if dry_run else "false"),)]


def statuses(metrics, dry_run):
    """Return ``{status: value}`` of ``media_cleanup_last_run_status`` for one kind of run."""
    label = "true" if dry_run else "false"
    return {
        dict(labels)["status"]: value
        for labels, value in metrics["media_cleanup_last_run_status"].items()
        if dict(labels)["dry_run"] == label
    }


def assert_series_of(metrics, run, last_success):
    """Assert that the series of ``run``'s kind carry its values, and ``last_success`` as that time."""
    dry_run = run.dry_run
    assert series(metrics, "media_cleanup_last_run_timestamp_seconds", dry_run) == run.finished_at.timestamp()
    assert series(metrics, "media_cleanup_last_success_timestamp_seconds", dry_run) == last_success
    assert series(metrics, "media_cleanup_run_duration_seconds", dry_run) == run.duration_seconds
    assert statuses(metrics, dry_run) == {status: float(status == run.status) for status in STATUSES}
    for name, column in FIGURES.items():
        assert series(metrics, name, dry_run) == getattr(run, column), name


def sweep_with_findings(media_root):
    """Leave an orphaned row, a stray file and a live one for a sweep to find."""
    owner = factories.tour()
    factories.media(owner, content=b"o" * 30)
    factories.delete_behind_the_orms_back(owner)
    factories.media(factories.tour(), content=b"l" * 20)
    factories.stray_file(media_root, "uploads/guides/stray.jpg", b"s" * 40)


def test_the_file_carries_every_metric_of_the_last_real_run_and_the_last_dry_run(media_root, metrics_file):
    sweep_with_findings(media_root)

    real = run_cleanup(now=later())
    dry = run_cleanup(now=later(), dry_run=True)  # finds nothing left: its figures differ

    metrics = read_metrics(metrics_file)
    real_run, dry_run = CleanupRun.objects.get(pk=real.run_id), CleanupRun.objects.get(pk=dry.run_id)
    assert set(metrics) == NAMES
    assert (real_run.deleted_files, real_run.storage_files, real_run.quarantine_bytes) == (2, 3, 70)
    assert (dry_run.deleted_files, dry_run.storage_files, dry_run.quarantine_bytes) == (0, 1, 70)
    assert_series_of(metrics, real_run, last_success=real_run.finished_at.timestamp())
    assert_series_of(metrics, dry_run, last_success=dry_run.finished_at.timestamp())


def test_a_failed_run_keeps_the_last_success_of_its_kind(media_root, metrics_file, settings):
    succeeded = run_cleanup()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }

    failed = run_cleanup()

    metrics = read_metrics(metrics_file)
    assert failed.status == "failed"
    success_time = CleanupRun.objects.get(pk=succeeded.run_id).finished_at.timestamp()
    assert_series_of(metrics, CleanupRun.objects.get(pk=failed.run_id), last_success=success_time)
    assert {labels for labels in metrics["media_cleanup_run_duration_seconds"]} == {(("dry_run", "false"),)}


def test_a_run_on_the_admins_selection_is_not_the_last_real_run(media_root, metrics_file):
    sweep = run_cleanup()
    media = factories.media(factories.tour())

    run_cleanup(media_ids=[media.pk])

    sweep_run = CleanupRun.objects.get(pk=sweep.run_id)
    assert_series_of(read_metrics(metrics_file), sweep_run, last_success=sweep_run.finished_at.timestamp())


def test_a_run_that_found_the_lock_taken_did_nothing_and_is_not_the_last_run(media_root, metrics_file):
    sweep = run_cleanup()
    with cleanup_lock("default"):
        assert run_cleanup().status == "locked"

    run_cleanup(dry_run=True)

    sweep_run = CleanupRun.objects.get(pk=sweep.run_id)
    assert_series_of(read_metrics(metrics_file), sweep_run, last_success=sweep_run.finished_at.timestamp())


def test_a_run_found_interrupted_is_the_last_of_its_kind_with_no_duration(media_root, metrics_file):
    started = timezone.now() - timedelta(hours=1)
    killed = CleanupRun.objects.create(status="running", started_at=started)

    run_cleanup(dry_run=True)  # finds it interrupted, as the next run does

    metrics = read_metrics(metrics_file)
    assert CleanupRun.objects.get(pk=killed.pk).status == "interrupted"
    assert series(metrics, "media_cleanup_last_run_timestamp_seconds", False) == started.timestamp()
    assert series(metrics, "media_cleanup_last_success_timestamp_seconds", False) == 0
    assert math.isnan(series(metrics, "media_cleanup_run_duration_seconds", False))
    assert statuses(metrics, False) == {status: float(status == "interrupted") for status in STATUSES}


def test_the_file_is_replaced_whole_never_written_in_place(media_root, metrics_file):
    run_cleanup()
    first = os.stat(metrics_file).st_ino

    run_cleanup(dry_run=True)

    assert os.stat(metrics_file).st_ino != first, "a new file renamed into place, not the old one rewritten"
    assert os.listdir(metrics_file.parent) == [metrics_file.name], "no temporary file left beside it"


def metrics_log(caplog):
    return [record for record in caplog.records if record.name == "media_app.metrics"]


def test_a_folder_that_does_not_exist_is_one_log_line_and_changes_nothing(
    media_root, settings, tmp_path, caplog
):
    path = tmp_path / "missing" / "media_cleanup.prom"
    settings.MEDIA_CLEANUP_METRICS_FILE = str(path)

    result = run_cleanup()

    assert (result.status, result.exit_code, CleanupRun.objects.get().status) == ("ok", 0, "ok")
    (logged,) = metrics_log(caplog)
    assert logged.levelno == logging.ERROR and logged.exc_info is None
    assert logged.getMessage() == f"Cannot write the metrics file {path}: No such file or directory"
    assert not path.parent.exists()


def test_a_file_that_cannot_be_replaced_is_one_log_line_and_stays_as_it_was(media_root, metrics_file, caplog):
    chattr = require_tool("chattr", needed_for="a file not even root can replace")
    run_cleanup()
    before = metrics_file.read_bytes()
    subprocess.run([chattr, "+i", str(metrics_file)], check=True)
    try:
        result = run_cleanup(dry_run=True)
    finally:
        subprocess.run([chattr, "-i", str(metrics_file)], check=True)

    assert (result.status, result.exit_code) == ("ok", 0)
    (logged,) = metrics_log(caplog)
    assert logged.getMessage() == f"Cannot write the metrics file {metrics_file}: Operation not permitted"
    assert metrics_file.read_bytes() == before
    assert os.listdir(metrics_file.parent) == [metrics_file.name]


def test_the_command_writes_the_file_and_an_unwritable_one_costs_one_line_not_the_exit_code(
    manage_py, tmp_path
):
    written = tmp_path / "media_cleanup.prom"
    missing = tmp_path / "missing" / "media_cleanup.prom"

    ok = manage_py("cleanup_media", env={"MEDIA_CLEANUP_METRICS_FILE": str(written)})
    unwritable = manage_py("cleanup_media", env={"MEDIA_CLEANUP_METRICS_FILE": str(missing)})

    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert set(read_metrics(written)) == NAMES
    assert unwritable.returncode == 0
    assert unwritable.stderr.count("\n") == 1 and "Traceback" not in unwritable.stderr
    assert f"Cannot write the metrics file {missing}: No such file or directory" in unwritable.stderr


def test_without_a_metrics_file_a_run_never_loads_prometheus_client(settings):
    """prometheus_client takes some 45 ms to import: a process that writes no metrics must not pay it."""
    program = (
        "import sys, django; django.setup(); from media_app.cleanup.engine import run_cleanup; "
        "print(run_cleanup(dry_run=True).status, 'prometheus_client' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=settings.BASE_DIR,
        env={**child_environment(settings), "DJANGO_SETTINGS_MODULE": "mediaproject.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout == "ok False\n", result.stderr
