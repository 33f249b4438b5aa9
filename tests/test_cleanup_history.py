"""The run history: each run's ``CleanupRun`` row, written through ``run_cleanup()``."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from media_app.cleanup.backends.filesystem import FilesystemWalker
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.history import run_ended
from media_app.cleanup.result import FIGURES
from media_app.models import CleanupRun, Media
from tests import factories
from tests.backends import later

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


# -- the storage's size: what each run listed under uploads/ ----------------------------------------


def stored_under_uploads(backend):
    """Return the files under uploads/ and their bytes as the storage itself tells them."""
    if backend.name == "s3":
        pages = backend.client.get_paginator("list_objects_v2").paginate(
            Bucket=backend.bucket, Prefix="uploads/"
        )
        sizes = [entry["Size"] for page in pages for entry in page.get("Contents", ())]
    else:
        sizes = [
            os.lstat(os.path.join(folder, name)).st_size
            for folder, _, names in os.walk(backend.root / "uploads")
            for name in names
        ]
    return len(sizes), sum(sizes)


def test_each_run_records_the_files_and_bytes_it_listed_young_ones_included(backend):
    factories.media(factories.tour(), content=b"a" * 300)
    backend.put("uploads/guides/stray.jpg", b"b" * 50)
    backend.put("uploads/drivers/2026/05/deep.pdf", b"c" * 7)
    stored = stored_under_uploads(backend)

    young = run_cleanup(dry_run=True)  # everything was written just now
    real = run_cleanup(now=later())

    assert stored == (3, 357) and young.young_files == 2 and real.deleted_files == 2
    for run in CleanupRun.objects.all():
        assert (run.storage_files, run.storage_bytes) == stored, run.dry_run


def test_a_symlink_counts_its_own_size_and_a_linked_type_folder_its_files(media_root, outside_dir):
    (outside_dir / "guides").mkdir()
    (outside_dir / "guides/linked.jpg").write_bytes(b"g" * 40)
    (outside_dir / "big.jpg").write_bytes(b"b" * 10_000)
    factories.stray_file(media_root, "uploads/tours/old.jpg", b"t" * 9)
    os.symlink(outside_dir / "guides", media_root / "uploads/guides")
    os.symlink(outside_dir / "big.jpg", media_root / "uploads/tours/link.jpg")

    result = run_cleanup(dry_run=True)

    run = CleanupRun.objects.get(pk=result.run_id)
    link = len(os.fsencode(outside_dir / "big.jpg"))  # a link's size is its target's path
    assert (run.storage_files, run.storage_bytes) == (3, 40 + 9 + link)


def test_a_file_a_media_row_records_counts_the_size_recorded_at_upload(media_root, monkeypatch):
    """On local files the sweep asks the disk for no size of a file a row records (an lstat each)."""
    media = factories.media(factories.tour(), content=b"a" * 300)
    Media.objects.filter(pk=media.pk).update(size=1234)  # as if the file changed behind the row
    factories.stray_file(media_root, "uploads/guides/stray.jpg", b"b" * 50)
    asked = []
    describe = FilesystemWalker.describe
    monkeypatch.setattr(
        FilesystemWalker, "describe", lambda walker, name: asked.append(name) or describe(walker, name)
    )

    result = run_cleanup(dry_run=True, now=later())

    assert (result.storage_files, result.storage_bytes) == (2, 1234 + 50)
    assert asked == ["uploads/guides/stray.jpg"], "only the file no row records is read"


def test_a_run_on_the_admins_selection_lists_nothing_and_records_no_storage_size(media_root):
    media = factories.media(factories.tour())

    result = run_cleanup(media_ids=[media.pk])

    run = CleanupRun.objects.get(pk=result.run_id)
    assert (run.records_checked, run.storage_files, run.storage_bytes) == (1, 0, 0)
