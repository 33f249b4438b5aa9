"""The run history: each run's ``CleanupRun`` row, written through ``run_cleanup()``."""

from datetime import timedelta

import pytest
from django.utils import timezone

from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.history import run_ended
from media_app.cleanup.result import FIGURES
from media_app.models import CleanupRun
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_run_is_recorded_running_then_completed(media_root):
    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    seen = []

    result = run_cleanup(
        force=True, trigger="cron", on_item=lambda kind, name: seen.append(CleanupRun.objects.get().status)
    )

    run = CleanupRun.objects.get(pk=result.run_id)
    assert set(seen) == {"running"}
    assert (run.status, run.trigger, run.dry_run, run.deleted_files, run.orphaned_files) == (
        "ok",
        "cron",
        False,
        1,
        1,
    )
    assert run.finished_at and run.duration_seconds is not None
    assert run.options["force"] is True


def test_a_killed_run_is_marked_interrupted_by_the_next(media_root):
    killed = CleanupRun.objects.create(started_at=timezone.now(), status="running")

    run_cleanup()

    assert CleanupRun.objects.get(pk=killed.pk).status == "interrupted"


def test_old_history_is_purged_by_real_runs_only(media_root, settings):
    settings.MEDIA_CLEANUP_HISTORY_DAYS = 90
    old = CleanupRun.objects.create(started_at=timezone.now() - timedelta(days=91), status="ok")
    recent = CleanupRun.objects.create(started_at=timezone.now() - timedelta(days=89), status="ok")

    run_cleanup(dry_run=True)
    assert CleanupRun.objects.filter(pk=old.pk).exists()
    run_cleanup()

    assert not CleanupRun.objects.filter(pk=old.pk).exists()
    assert CleanupRun.objects.filter(pk=recent.pk).exists()


def test_the_row_holds_the_results_figures_and_the_options_as_given(media_root, settings):
    settings.MEDIA_CLEANUP_MIN_AGE = "1d"
    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    orphan = factories.media(factories.tour())

    selected = run_cleanup(min_age="6h", time_limit="1h", rate=500, media_ids=[orphan.pk])
    swept = run_cleanup(force=True, dry_run=True, purge_quarantine=True)

    for result in (selected, swept):
        run = CleanupRun.objects.get(pk=result.run_id)
        assert {name: getattr(run, name) for name in FIGURES} == result.figures()
        assert (run.status, run.sample, run.errors) == (result.status, result.sample, result.errors)
    assert CleanupRun.objects.get(pk=selected.run_id).options == {
        "dry_run": False,
        "min_age": 21600.0,
        "force": False,
        "time_limit": 3600.0,
        "rate": 500,
        "purge_quarantine": False,
        "media_ids": 1,
    }
    assert CleanupRun.objects.get(pk=swept.run_id).options == {
        "dry_run": True,
        "min_age": 86400.0,
        "force": True,
        "time_limit": None,
        "rate": None,
        "purge_quarantine": True,
    }


# -- run_ended: what the alerts and the metrics listen to --------------------------------------------


@pytest.fixture
def ended():
    """Collect the runs ``run_ended`` announces, as ``(id, status)``, while the test runs."""
    seen = []

    def listen(sender, run, using, **kwargs):
        seen.append((str(run.pk), run.status))

    run_ended.connect(listen, dispatch_uid="test-listener")
    yield seen
    run_ended.disconnect(dispatch_uid="test-listener")


def test_each_run_is_announced_once_its_end_is_recorded(media_root, ended):
    dry = run_cleanup(dry_run=True)
    real = run_cleanup()

    assert ended == [(dry.run_id, "ok"), (real.run_id, "ok")]


def test_a_run_found_interrupted_is_announced_too(media_root, ended):
    killed = CleanupRun.objects.create(status="running", started_at=timezone.now() - timedelta(hours=1))

    result = run_cleanup()

    assert ended == [(str(killed.pk), "interrupted"), (result.run_id, "ok")]


def test_a_listener_that_fails_is_one_log_line_and_changes_nothing(media_root, caplog):
    def broken(sender, **kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused\nby the mail server")

    run_ended.connect(broken, dispatch_uid="test-broken")
    try:
        result = run_cleanup()
    finally:
        run_ended.disconnect(dispatch_uid="test-broken")

    assert (result.status, result.exit_code, CleanupRun.objects.get().status) == ("ok", 0, "ok")
    (logged,) = [record for record in caplog.records if "listener of the run's end" in record.getMessage()]
    assert logged.exc_info is None and "\n" not in logged.getMessage()
    assert "ConnectionRefusedError: [Errno 111] Connection refused by the mail server" in logged.getMessage()
