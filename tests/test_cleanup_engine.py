import os
import time
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.lock import cleanup_lock
from media_app.cleanup.walkers import FilesystemWalker, StoredFile
from media_app.models import CleanupRun, Media
from tests import factories
from tests.conftest import tree

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(media_root):
    """A tour with two photos: data that must survive every sweep."""
    tour = factories.tour()
    photos = [factories.media(tour, name=f"live-{n}.jpg") for n in range(2)]
    return [media_root / photo.file.name for photo in photos]


def assert_alive(paths):
    missing = [str(path) for path in paths if not path.exists()]
    assert not missing, f"files in use were deleted: {missing}"


# -- orphaned records ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(factories.OWNERS))
def test_rows_whose_owner_is_gone_go_with_their_files(kind, media_root, live):
    owner = factories.OWNERS[kind]()
    orphans = [factories.media(owner, name=f"{n}.jpg") for n in range(2)]
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup()

    assert result.status == "ok"
    assert (result.orphaned_records, result.deleted_records, result.deleted_files) == (2, 2, 2)
    assert not Media.objects.filter(pk__in=[m.pk for m in orphans]).exists()
    assert not any((media_root / m.file.name).exists() for m in orphans)
    assert Media.objects.count() == 2
    assert_alive(live)


def test_an_orphaned_rows_file_still_used_by_a_live_row_is_kept(media_root):
    owner = factories.tour()
    orphan = factories.media(owner)
    Media.objects.create(content_object=factories.guide(), file=orphan.file.name)
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup()

    assert (result.deleted_records, result.deleted_files) == (1, 0)
    assert (media_root / orphan.file.name).exists()


def test_orphaned_rows_are_deleted_whatever_their_files_age(media_root):
    owner = factories.tour()
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup(min_age="30d")

    assert result.deleted_records == 1
    assert not (media_root / orphan.file.name).exists()


def test_an_owner_back_before_the_delete_keeps_its_rows(media_root):
    """Rows are checked again just before they go: an owner restored meanwhile keeps them."""
    owner = factories.tour()
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    restored = []

    def restore_owner_when_found(kind, name):
        if kind == "orphaned record" and not restored:
            owner.save(force_insert=True)
            restored.append(owner)

    result = run_cleanup(on_item=restore_owner_when_found)

    assert result.orphaned_records == 1 and result.deleted_records == 0
    assert Media.objects.filter(pk=orphan.pk).exists()
    assert (media_root / orphan.file.name).exists()


# -- orphaned files, grace period ------------------------------------------------------------


def test_old_unreferenced_files_go_and_referenced_ones_stay(media_root, live):
    strays = [
        factories.stray_file(media_root, f"uploads/{folder}/stray.jpg") for folder in ("tours", "users")
    ]

    result = run_cleanup()

    assert (result.orphaned_files, result.deleted_files) == (2, 2)
    assert result.quarantined_bytes == 2 * len(b"stray"), "by default removed files go to the quarantine"
    assert not any(path.exists() for path in strays)
    assert_alive(live)


def test_a_fresh_file_inside_the_grace_period_is_kept_until_the_clock_moves(media_root):
    fresh = factories.stray_file(media_root, "uploads/tours/uploading.jpg", age_days=0)

    kept = run_cleanup(min_age="6h")
    later = run_cleanup(min_age="6h", now=timezone.now() + timedelta(hours=7))

    assert (kept.young_files, kept.orphaned_files, kept.deleted_files) == (1, 0, 0)
    assert later.deleted_files == 1
    assert not fresh.exists()


def test_the_default_grace_period_comes_from_the_setting(media_root, settings):
    settings.MEDIA_CLEANUP_MIN_AGE = "3d"
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg", age_days=2)

    result = run_cleanup()

    assert result.young_files == 1
    assert stray.exists()


def test_nothing_outside_uploads_is_touched(media_root, outside_dir):
    others = [
        factories.stray_file(media_root, "other/old.jpg"),
        factories.stray_file(media_root, "root-file.txt"),
        factories.stray_file(outside_dir, "old.jpg"),
    ]
    before = tree(media_root.parent)

    result = run_cleanup(force=True)

    assert result.files_checked == 0
    assert tree(media_root.parent) == before
    assert all(path.exists() for path in others)


def test_a_dry_run_writes_and_removes_nothing_in_media_root(media_root, live):
    owner = factories.tour()
    factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    before = tree(media_root)

    result = run_cleanup(dry_run=True)

    assert (result.orphaned_records, result.orphaned_files, result.deleted_files) == (1, 1, 2)
    assert tree(media_root) == before
    assert Media.objects.count() == 3


def test_a_real_run_writes_nothing_of_its_own_in_media_root(media_root, live):
    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    before = set(tree(media_root))

    run_cleanup()

    assert set(tree(media_root)) == before - {str(media_root / "uploads/tours/stray.jpg")}


def test_dry_run_counts_equal_the_real_runs(media_root, live):
    for kind in factories.OWNERS.values():
        owner = kind()
        factories.media(owner)
        factories.delete_behind_the_orms_back(owner)
    shared_owner = factories.tour()
    shared = factories.media(shared_owner)
    Media.objects.create(content_object=factories.tour(), file=shared.file.name)
    factories.delete_behind_the_orms_back(shared_owner)
    for n in range(3):
        factories.stray_file(media_root, f"uploads/drivers/stray-{n}.jpg")
    factories.stray_file(media_root, "uploads/drivers/young.jpg", age_days=0)
    (media_root / live[0].relative_to(media_root)).unlink()

    dry = run_cleanup(dry_run=True).as_dict()
    real = run_cleanup().as_dict()

    for key in ("run_id", "dry_run", "duration_seconds"):
        dry.pop(key), real.pop(key)
    assert dry == real
    assert real["deleted_records"] == 6 and real["deleted_files"] == 5 + 3 and real["missing_files"] == 1


def test_empty_folders_left_behind_go_but_uploads_and_type_folders_stay(media_root):
    factories.stray_file(media_root, "uploads/tours/2019/05/old.jpg")

    run_cleanup(force=True)

    assert not (media_root / "uploads/tours/2019").exists()
    assert (media_root / "uploads/tours").is_dir()


# -- findings --------------------------------------------------------------------------------


def test_missing_files_are_counted_and_their_rows_kept(media_root, live):
    live[0].unlink()

    result = run_cleanup()

    assert result.missing_files == 1
    assert Media.objects.count() == 2
    assert result.status == "ok"


def test_rows_of_a_stale_content_type_are_counted_and_kept(media_root):
    ghost_type = ContentType.objects.create(app_label="retired_app", model="ghost")
    ghost = Media.objects.create(
        content_type=ghost_type,
        object_id="11111111-1111-1111-1111-111111111111",
        file=factories.stray_file(media_root, "uploads/other/ghost.jpg").name,
    )
    Media.objects.filter(pk=ghost.pk).update(file="uploads/other/ghost.jpg")

    result = run_cleanup()

    assert (result.stale_type_records, result.orphaned_records, result.orphaned_files) == (1, 0, 0)
    assert Media.objects.filter(pk=ghost.pk).exists()
    assert (media_root / "uploads/other/ghost.jpg").exists()


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_names_outside_media_root_are_refused_and_never_touched(where, media_root, outside_dir):
    secret = factories.stray_file(outside_dir, "secret.txt")
    name = "../outside/secret.txt" if where == "relative" else str(secret)
    live_row = factories.media(factories.tour())
    orphan_owner = factories.tour()
    orphan_row = factories.media(orphan_owner)
    Media.objects.filter(pk__in=[live_row.pk, orphan_row.pk]).update(file=name)
    factories.delete_behind_the_orms_back(orphan_owner)

    result = run_cleanup(force=True)

    assert result.refused_paths == 2
    assert result.deleted_records == 1, "the orphaned row may go; its path is never touched"
    assert Media.objects.filter(pk=live_row.pk).exists()
    assert secret.read_bytes() == b"stray"
    assert result.status == "ok"


@pytest.mark.parametrize("spelling", ["uploads//tours/{}", "uploads/./tours/{}", "uploads/tours/../tours/{}"])
def test_a_file_behind_an_odd_but_inward_name_stays_referenced(spelling, media_root):
    row = factories.media(factories.tour())
    path = media_root / row.file.name
    os.utime(path, (time.time() - 3 * 86400,) * 2)
    Media.objects.filter(pk=row.pk).update(file=spelling.format(path.name))

    result = run_cleanup(force=True)

    assert result.refused_paths == 1
    assert path.exists()


def test_a_file_referenced_after_the_listing_is_kept(media_root):
    """Each batch is checked against the database just before it goes."""
    stray = factories.stray_file(media_root, "uploads/tours/adopted.jpg")
    owner = factories.tour()

    def adopt_when_found(kind, name):
        if kind == "orphaned file":
            Media.objects.create(content_object=owner, file=name)

    result = run_cleanup(force=True, on_item=adopt_when_found)

    assert result.orphaned_files == 1 and result.deleted_files == 0
    assert stray.exists()


def test_an_unreferenced_symlink_goes_as_a_link_and_its_target_stays(media_root, outside_dir):
    target = factories.stray_file(outside_dir, "target.jpg")
    link = media_root / "uploads/tours/link.jpg"
    link.parent.mkdir(parents=True)
    os.symlink(target, link)
    os.utime(link, (time.time() - 3 * 86400,) * 2, follow_symlinks=False)

    result = run_cleanup(force=True)

    assert result.deleted_files == 1
    assert not os.path.lexists(link)
    assert target.read_bytes() == b"stray"


def test_a_symlinked_folder_is_never_entered(media_root, outside_dir):
    inside = factories.stray_file(outside_dir, "deep/old.jpg")
    (media_root / "uploads").mkdir()
    os.symlink(outside_dir, media_root / "uploads/escape")
    os.utime(media_root / "uploads/escape", (time.time() - 3 * 86400,) * 2, follow_symlinks=False)

    result = run_cleanup(force=True)

    assert result.files_checked == 1, "the link is listed as one entry, not walked into"
    assert inside.exists()
    assert not os.path.lexists(media_root / "uploads/escape")


ODD_NAMES = ["with space.jpg", "თბილისი.jpg", 'quote\'s "x".jpg', "new\nline.jpg", "tab\there.jpg", "a-b.jpg"]


def test_odd_names_are_handled_like_any_other(media_root):
    owner = factories.tour()
    kept, strays = [], []
    for n, odd in enumerate(ODD_NAMES):
        row = factories.media(owner)
        name = f"uploads/tours/kept-{odd}"
        (media_root / row.file.name).rename(media_root / name)
        Media.objects.filter(pk=row.pk).update(file=name)
        kept.append(media_root / name)
        strays.append(factories.stray_file(media_root, f"uploads/tours/stray-{n}-{odd}"))
    factories.stray_file(media_root, "uploads/tours/a/b.jpg")  # "a/" sorts after "a-b.jpg"

    result = run_cleanup(force=True)

    assert result.missing_files == 0
    assert result.deleted_files == len(ODD_NAMES) + 1
    assert_alive(kept)
    assert not any(path.exists() for path in strays)


def test_names_that_are_not_utf8_are_reported_and_left_alone(media_root):
    folder = os.fsencode(media_root / "uploads/tours")
    os.makedirs(folder)
    bad_file = os.path.join(folder, b"caf\xe9.jpg")
    bad_folder = os.path.join(folder, b"\xff\xfe")
    os.makedirs(bad_folder)
    for path in (bad_file, os.path.join(bad_folder, b"x.jpg")):
        with open(path, "wb") as handle:
            handle.write(b"x")
        os.utime(path, (time.time() - 3 * 86400,) * 2)

    result = run_cleanup(force=True)

    assert result.unreadable_names == 2
    assert os.path.exists(bad_file) and os.path.exists(os.path.join(bad_folder, b"x.jpg"))
    assert result.status == "ok"


# -- safety cap ------------------------------------------------------------------------------


def test_an_empty_database_with_files_is_refused(media_root, settings):
    strays = [factories.stray_file(media_root, f"uploads/tours/{n}.jpg") for n in range(20)]

    dry = run_cleanup(dry_run=True)
    real = run_cleanup()

    for result in (dry, real):
        assert result.status == "refused"
        assert result.exit_code == 1
        assert "20 of 20 files" in result.message
        assert result.deleted_files == 0
    assert all(path.exists() for path in strays)


def test_force_lifts_the_cap(media_root):
    strays = [factories.stray_file(media_root, f"uploads/tours/{n}.jpg") for n in range(20)]

    result = run_cleanup(force=True)

    assert result.status == "ok" and result.deleted_files == 20
    assert not any(path.exists() for path in strays)


def test_the_cap_on_rows(media_root, settings):
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 3
    factories.media(factories.tour())
    for _ in range(4):
        owner = factories.guide()
        factories.media(owner)
        factories.delete_behind_the_orms_back(owner)

    result = run_cleanup()

    assert result.status == "refused"
    assert "4 of 5 media rows" in result.message
    assert Media.objects.count() == 5


def test_the_cap_allows_small_numbers_and_small_shares(media_root, live, settings):
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 10
    few = [factories.stray_file(media_root, f"uploads/tours/few-{n}.jpg") for n in range(10)]

    assert run_cleanup().deleted_files == 10, "10 items is not more than the floor of 10"
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 1
    settings.MEDIA_CLEANUP_MAX_DELETE_RATIO = 0.4
    factories.stray_file(media_root, "uploads/tours/one.jpg")
    assert run_cleanup().deleted_files == 1, "1 of 3 files is under the ratio"
    assert not any(path.exists() for path in few)


# -- lock, errors, limits --------------------------------------------------------------------


def test_a_second_run_while_one_holds_the_lock_ends_locked_and_is_recorded(media_root):
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")

    with cleanup_lock("default") as acquired:
        assert acquired
        result = run_cleanup(force=True)

    assert result.status == "locked" and result.exit_code == 75
    assert stray.exists()
    assert CleanupRun.objects.get(pk=result.run_id).status == "locked"
    assert run_cleanup(force=True).deleted_files == 1, "the lock is free again"


def test_a_failing_delete_is_counted_and_the_run_goes_on(media_root, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0  # the storage's delete() is used only without quarantine
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "tests.storages.FailingDeleteStorage"}}
    strays = [factories.stray_file(media_root, f"uploads/tours/{n}.jpg") for n in range(3)]

    failed = run_cleanup(force=True)

    assert failed.status == "errors" and failed.exit_code == 1
    assert failed.error_count == 3 and "Permission denied" in failed.errors[0]
    assert all(path.exists() for path in strays)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    assert run_cleanup(force=True).deleted_files == 3, "a rerun converges"


def test_files_already_gone_when_their_delete_comes_are_a_finding(media_root, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0

    class VanishingWalker(FilesystemWalker):
        def delete(self, files):
            files = list(files)
            for stored in files:
                os.unlink(os.path.join(self.root, stored.name))
            return super().delete(files)

    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    from django.core.files.storage import default_storage

    result = run_cleanup(walker=VanishingWalker(default_storage))

    assert (result.already_gone, result.deleted_files, result.error_count, result.status) == (1, 0, 0, "ok")


def test_time_limit_stops_deleting_and_the_next_run_carries_on(media_root):
    strays = [factories.stray_file(media_root, f"uploads/tours/{n}.jpg") for n in range(3)]

    stopped = run_cleanup(force=True, time_limit="0")
    carried_on = run_cleanup(force=True)

    assert stopped.status == "partial" and stopped.exit_code == 0
    assert stopped.orphaned_files == 3, "the listing always completes"
    assert stopped.deleted_files == 0
    assert carried_on.deleted_files == 3
    assert not any(path.exists() for path in strays)


def test_rate_limits_deletions_per_second(media_root):
    for n in range(6):
        factories.stray_file(media_root, f"uploads/tours/{n}.jpg")

    started = time.monotonic()
    result = run_cleanup(force=True, rate=10)

    assert result.deleted_files == 6
    assert time.monotonic() - started >= 0.5, "6 deletions at 10 per second take at least 0.5 s"


def test_an_unsorted_walker_fails_the_run_before_any_delete(media_root):
    class UnsortedWalker(FilesystemWalker):
        def iter_files(self):
            yield StoredFile("uploads/tours/b.jpg", size=1, modified=0)
            yield StoredFile("uploads/tours/a.jpg", size=1, modified=0)

    strays = [factories.stray_file(media_root, f"uploads/tours/{n}.jpg") for n in "ab"]
    from django.core.files.storage import default_storage

    result = run_cleanup(force=True, walker=UnsortedWalker(default_storage))

    assert result.status == "failed" and "not sorted" in result.message
    assert all(path.exists() for path in strays)


def test_uploads_as_a_symlink_fails_the_run(media_root, outside_dir):
    factories.stray_file(outside_dir, "old.jpg")
    os.symlink(outside_dir, media_root / "uploads")

    result = run_cleanup(force=True)

    assert result.status == "failed"
    assert (outside_dir / "old.jpg").exists()


def test_it_refuses_to_run_inside_a_transaction():
    with pytest.raises(transaction.TransactionManagementError), transaction.atomic():
        run_cleanup()


def test_queries_do_not_grow_with_rows(media_root, django_assert_max_num_queries):
    def populate(count):
        for _ in range(count):
            owner = factories.tour()
            factories.media(owner)
            factories.delete_behind_the_orms_back(owner)
            factories.media(factories.guide())
            factories.stray_file(media_root, f"uploads/guides/stray-{time.monotonic_ns()}.jpg")

    populate(2)
    with django_assert_max_num_queries(100) as small:
        run_cleanup(force=True)
    populate(40)

    with django_assert_max_num_queries(len(small.captured_queries)):
        assert run_cleanup(force=True).deleted_files == 80


# -- history ---------------------------------------------------------------------------------


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


# -- a selection (the admin action) ----------------------------------------------------------


def test_a_selection_removes_only_its_orphaned_rows_and_their_files(media_root):
    live_row = factories.media(factories.tour())
    gone_owner, other_gone_owner = factories.tour(), factories.guide()
    selected_orphan = factories.media(gone_owner)
    unselected_orphan = factories.media(other_gone_owner)
    factories.delete_behind_the_orms_back(gone_owner)
    factories.delete_behind_the_orms_back(other_gone_owner)
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")

    result = run_cleanup(media_ids=[live_row.pk, selected_orphan.pk])

    assert (result.records_checked, result.orphaned_records, result.deleted_records) == (2, 1, 1)
    assert (result.deleted_files, result.files_checked) == (1, 0)
    assert not Media.objects.filter(pk=selected_orphan.pk).exists()
    assert not (media_root / selected_orphan.file.name).exists()
    assert Media.objects.filter(pk__in=[live_row.pk, unselected_orphan.pk]).count() == 2
    assert (media_root / live_row.file.name).exists() and stray.exists()
