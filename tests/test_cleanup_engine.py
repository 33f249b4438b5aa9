import os
import re
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models.signals import post_delete, pre_delete
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from media_app.cleanup.backends.base import MARKER_NAME, StoredFile
from media_app.cleanup.backends.filesystem import FilesystemWalker
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.lock import cleanup_lock
from media_app.models import CleanupRun, Media
from tests import factories
from tests.backends import later
from tests.conftest import tree

pytestmark = pytest.mark.django_db(transaction=True)
# For rules of local files (symlinks, folders, MEDIA_ROOT) that use a fixture built on ``backend``.
FILESYSTEM_ONLY = pytest.mark.parametrize("backend", ["filesystem"], indirect=True)


@pytest.fixture
def live(backend):
    """A tour with two photos: data that must survive every sweep."""
    tour = factories.tour()
    return [factories.media(tour, name=f"live-{n}.jpg").file.name for n in range(2)]


def assert_alive(backend, names):
    missing = backend.missing(names)
    assert not missing, f"files in use were deleted: {missing}"


# -- orphaned records ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(factories.OWNERS))
def test_rows_whose_owner_is_gone_go_with_their_files(kind, backend, live):
    owner = factories.OWNERS[kind]()
    orphans = [factories.media(owner, name=f"{n}.jpg") for n in range(2)]
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup()

    assert result.status == "ok"
    assert (result.orphaned_records, result.deleted_records, result.deleted_files) == (2, 2, 2)
    assert not Media.objects.filter(pk__in=[m.pk for m in orphans]).exists()
    assert not any(backend.exists(m.file.name) for m in orphans)
    assert Media.objects.count() == 2
    assert_alive(backend, live)


def test_an_orphaned_rows_file_still_used_by_a_live_row_is_kept(backend):
    owner = factories.tour()
    orphan = factories.media(owner)
    Media.objects.create(content_object=factories.guide(), file=orphan.file.name)
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup()

    assert (result.deleted_records, result.deleted_files) == (1, 0)
    assert backend.exists(orphan.file.name)


def test_orphaned_rows_are_deleted_whatever_their_files_age(backend):
    owner = factories.tour()
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup(min_age="30d")

    assert result.deleted_records == 1
    assert not backend.exists(orphan.file.name)


def test_an_owner_back_before_the_delete_keeps_its_rows(backend):
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
    assert backend.exists(orphan.file.name)


def test_rows_the_sweep_deletes_send_djangos_delete_signals_once_each(backend):
    """Another app's receivers (an audit log, a search index) hear of the rows the sweep deletes."""
    owner = factories.tour()
    orphans = {str(factories.media(owner, name=f"{n}.jpg").pk) for n in range(3)}
    factories.delete_behind_the_orms_back(owner)
    heard = {"pre": [], "post": []}

    def pre(sender, instance, **kwargs):
        heard["pre"].append(str(instance.pk))

    def post(sender, instance, **kwargs):
        heard["post"].append(str(instance.pk))

    pre_delete.connect(pre, sender=Media, dispatch_uid="test_heard_pre")
    post_delete.connect(post, sender=Media, dispatch_uid="test_heard_post")
    try:
        result = run_cleanup()
    finally:
        pre_delete.disconnect(sender=Media, dispatch_uid="test_heard_pre")
        post_delete.disconnect(sender=Media, dispatch_uid="test_heard_post")

    assert result.deleted_records == 3
    assert sorted(heard["pre"]) == sorted(heard["post"]) == sorted(orphans)


# -- orphaned files, grace period ------------------------------------------------------------


def test_old_unreferenced_files_go_and_referenced_ones_stay(backend, live):
    strays = [backend.put(f"uploads/{folder}/stray.jpg") for folder in ("tours", "users")]

    result = run_cleanup(now=later())

    assert (result.orphaned_files, result.deleted_files) == (2, 2)
    assert result.quarantined_bytes == 2 * len(b"stray"), "by default removed files go to the quarantine"
    assert backend.missing(strays) == strays
    assert_alive(backend, live)


@FILESYSTEM_ONLY
def test_unreferenced_files_are_read_from_disk_only_once_the_merge_is_over(backend, monkeypatch):
    """An lstat during the merge waits on the threads reading ahead: they are asked for alone."""
    strays = [backend.put(f"uploads/tours/stray-{n}.jpg") for n in range(3)]
    describe = FilesystemWalker.describe
    threads_then = []

    def watched(self, name):
        threads_then.append({thread.name for thread in threading.enumerate()})
        return describe(self, name)

    monkeypatch.setattr(FilesystemWalker, "describe", watched)
    result = run_cleanup(now=later())

    assert result.orphaned_files == 3 and backend.missing(strays) == strays
    assert threads_then and not any({"listing", "media rows"} & names for names in threads_then)


@FILESYSTEM_ONLY
def test_a_file_gone_between_the_listing_and_its_lstat_is_left_out(backend, monkeypatch):
    """A user's delete lands while the sweep runs: the file is simply no longer there to count."""
    strays = [backend.put(f"uploads/tours/stray-{n}.jpg") for n in range(2)]
    describe = FilesystemWalker.describe

    def deleted_first(self, name):
        if name == strays[0]:
            os.remove(os.path.join(self.root, name))
        return describe(self, name)

    monkeypatch.setattr(FilesystemWalker, "describe", deleted_first)
    result = run_cleanup(now=later())

    assert result.status == "ok" and not result.errors
    assert (result.orphaned_files, result.deleted_files) == (1, 1)
    assert result.storage_bytes == len(b"stray")


def test_a_fresh_file_inside_the_grace_period_is_kept_until_the_clock_moves(backend):
    fresh = backend.put("uploads/tours/uploading.jpg")

    kept = run_cleanup(min_age="6h")
    moved_on = run_cleanup(min_age="6h", now=timezone.now() + timedelta(hours=7))

    assert (kept.young_files, kept.orphaned_files, kept.deleted_files) == (1, 0, 0)
    assert moved_on.deleted_files == 1
    assert not backend.exists(fresh)


def test_the_default_grace_period_comes_from_the_setting(backend, settings):
    settings.MEDIA_CLEANUP_MIN_AGE = "3d"
    stray = backend.put("uploads/tours/stray.jpg")

    result = run_cleanup(now=later(days=2))

    assert result.young_files == 1
    assert backend.exists(stray)


def test_nothing_outside_uploads_is_touched(backend, outside_dir):
    backend.put("other/old.jpg")
    backend.put("root-file.txt")
    backend.put("uploadsx/old.jpg")
    factories.stray_file(outside_dir, "old.jpg")
    before, outside = backend.names(), tree(outside_dir)

    result = run_cleanup(force=True, now=later())

    assert result.files_checked == 0
    assert backend.names() == sorted([*before, MARKER_NAME]), "only the storage marker is added"
    assert tree(outside_dir) == outside


def test_a_dry_run_removes_nothing(backend, live):
    owner = factories.tour()
    factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    backend.put("uploads/tours/stray.jpg")
    before = backend.names()

    result = run_cleanup(dry_run=True, now=later())

    assert (result.orphaned_records, result.orphaned_files, result.deleted_files) == (1, 1, 2)
    assert backend.names() == before
    assert Media.objects.count() == 3


def test_a_dry_run_leaves_even_folders_in_media_root_alone(media_root):
    factories.stray_file(media_root, "uploads/tours/2019/05/stray.jpg")
    before = tree(media_root)

    run_cleanup(dry_run=True)

    assert tree(media_root) == before


@FILESYSTEM_ONLY
def test_a_real_run_writes_only_the_storage_marker_in_media_root(media_root, live):
    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    before = set(tree(media_root))

    run_cleanup()

    removed, marker = media_root / "uploads/tours/stray.jpg", media_root / MARKER_NAME
    assert set(tree(media_root)) == before - {str(removed)} | {str(marker)}


def test_dry_run_counts_equal_the_real_runs(backend, live):
    for kind in factories.OWNERS.values():
        owner = kind()
        factories.media(owner)
        factories.delete_behind_the_orms_back(owner)
    shared_owner = factories.tour()
    shared = factories.media(shared_owner)
    Media.objects.create(content_object=factories.tour(), file=shared.file.name)
    factories.delete_behind_the_orms_back(shared_owner)
    for n in range(3):
        backend.put(f"uploads/drivers/stray-{n}.jpg")
    backend.remove(live[0])
    clock = later()

    dry = run_cleanup(dry_run=True, now=clock).as_dict()
    real = run_cleanup(now=clock).as_dict()

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


def test_missing_files_are_counted_and_their_rows_kept(backend, live):
    backend.remove(live[0])

    result = run_cleanup()

    assert result.missing_files == 1
    assert Media.objects.count() == 2
    assert result.status == "ok"


def test_rows_of_a_stale_content_type_are_counted_and_kept(backend):
    ghost_type = ContentType.objects.create(app_label="retired_app", model="ghost")
    ghost = Media.objects.create(
        content_type=ghost_type,
        object_id="11111111-1111-1111-1111-111111111111",
        file=backend.put("uploads/other/ghost.jpg"),
    )

    result = run_cleanup(now=later())

    assert (result.stale_type_records, result.orphaned_records, result.orphaned_files) == (1, 0, 0)
    assert Media.objects.filter(pk=ghost.pk).exists()
    assert backend.exists("uploads/other/ghost.jpg")


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
def test_a_file_behind_an_odd_but_inward_name_stays_referenced(spelling, backend):
    row = factories.media(factories.tour())
    name = row.file.name
    Media.objects.filter(pk=row.pk).update(file=spelling.format(name.rsplit("/", 1)[1]))

    result = run_cleanup(force=True, now=later(days=3))

    assert result.refused_paths == 1
    assert backend.exists(name)


def test_a_row_naming_a_listed_file_whose_backslashes_climb_is_refused(media_root):
    """Local files only: a name with backslashes that lead up once read as separators."""
    name = "uploads/tours/a\\..\\..\\..\\secret.txt"
    factories.stray_file(media_root, name)
    row = factories.media(factories.tour())
    Media.objects.filter(pk=row.pk).update(file=name)

    result = run_cleanup(dry_run=True, now=later(days=3))

    assert result.refused_paths == 1
    assert result.missing_files == 0


def test_a_file_referenced_after_the_listing_is_kept(backend):
    """Each batch is checked against the database just before it goes."""
    stray = backend.put("uploads/tours/adopted.jpg")
    owner = factories.tour()

    def adopt_when_found(kind, name):
        if kind == "orphaned file":
            Media.objects.create(content_object=owner, file=name)

    result = run_cleanup(force=True, on_item=adopt_when_found, now=later())

    assert result.orphaned_files == 1 and result.deleted_files == 0
    assert backend.exists(stray)


def test_a_dry_run_reports_what_it_found_without_checking_again(backend):
    """Nothing goes in a dry run: the batches are not checked against the database a second time."""
    backend.put("uploads/tours/adopted.jpg")
    owner = factories.tour()

    def adopt_when_found(kind, name):
        if kind == "orphaned file":
            Media.objects.create(content_object=owner, file=name)

    with CaptureQueriesContext(connection) as queries:
        result = run_cleanup(dry_run=True, on_item=adopt_when_found, now=later())

    assert (result.orphaned_files, result.deleted_files) == (1, 1), "what a real run would remove, as found"
    assert not [query for query in queries if '"file" IN (' in query["sql"]], "no reference re-check"


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


def test_a_symlinked_folder_below_a_type_folder_is_never_entered(media_root, outside_dir):
    """A symlink directly in uploads/ is a type folder moved elsewhere: see test_cleanup_layout."""
    inside = factories.stray_file(outside_dir, "deep/old.jpg")
    (media_root / "uploads/tours").mkdir(parents=True)
    os.symlink(outside_dir, media_root / "uploads/tours/escape")
    os.utime(media_root / "uploads/tours/escape", (time.time() - 3 * 86400,) * 2, follow_symlinks=False)

    result = run_cleanup(force=True)

    assert result.files_checked == 1, "the link is listed as one entry, not walked into"
    assert inside.exists()
    assert not os.path.lexists(media_root / "uploads/tours/escape")


ODD_NAMES = ["with space.jpg", "თბილისი.jpg", 'quote\'s "x".jpg', "new\nline.jpg", "tab\there.jpg", "a-b.jpg"]


def test_odd_names_are_handled_like_any_other(backend):
    # moto's server cannot take a key with a newline (its URL parser refuses it); AWS S3 can.
    odd_names = ODD_NAMES if backend.name == "filesystem" else [n for n in ODD_NAMES if "\n" not in n]
    owner = factories.tour()
    kept, strays = [], []
    for n, odd in enumerate(odd_names):
        kept.append(Media.objects.create(content_object=owner, file=backend.put(f"uploads/tours/kept-{odd}")))
        strays.append(backend.put(f"uploads/tours/stray-{n}-{odd}"))
    strays.append(backend.put("uploads/tours/a/b.jpg"))  # "a/" sorts after "a-b.jpg"

    result = run_cleanup(force=True, now=later())

    assert result.missing_files == 0
    assert result.deleted_files == len(odd_names) + 1
    assert_alive(backend, [row.file.name for row in kept])
    assert backend.missing(strays) == strays


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


def test_an_empty_database_with_files_is_refused(backend):
    strays = [backend.put(f"uploads/tours/{n}.jpg") for n in range(20)]

    dry = run_cleanup(dry_run=True, now=later())
    real = run_cleanup(now=later())

    for result in (dry, real):
        assert result.status == "refused"
        assert result.exit_code == 1
        assert "20 of 20 files" in result.message
        assert result.deleted_files == 0
    assert backend.missing(strays) == []


def test_force_lifts_the_cap(backend):
    strays = [backend.put(f"uploads/tours/{n}.jpg") for n in range(20)]

    result = run_cleanup(force=True, now=later())

    assert result.status == "ok" and result.deleted_files == 20
    assert backend.missing(strays) == strays


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


def test_the_cap_allows_small_numbers_and_small_shares(backend, live, settings):
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 10
    few = [backend.put(f"uploads/tours/few-{n}.jpg") for n in range(10)]

    assert run_cleanup(now=later()).deleted_files == 10, "10 items is not more than the floor of 10"
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 1
    settings.MEDIA_CLEANUP_MAX_DELETE_RATIO = 0.4
    backend.put("uploads/tours/one.jpg")
    assert run_cleanup(now=later()).deleted_files == 1, "1 of 3 files is under the ratio"
    assert backend.missing(few) == few


# -- lock, errors, limits --------------------------------------------------------------------


def test_a_second_run_while_one_holds_the_lock_ends_locked_and_is_recorded(backend):
    stray = backend.put("uploads/tours/stray.jpg")

    with cleanup_lock("default") as acquired:
        assert acquired
        result = run_cleanup(force=True, now=later())

    assert result.status == "locked" and result.exit_code == 75
    assert backend.exists(stray)
    assert CleanupRun.objects.get(pk=result.run_id).status == "locked"
    assert run_cleanup(force=True, now=later()).deleted_files == 1, "the lock is free again"


def test_a_failing_delete_is_counted_and_the_run_goes_on(backend, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0  # the storage's delete is used only without quarantine
    strays = [backend.put(f"uploads/tours/{n}.jpg") for n in range(3)]

    with backend.deletes_failing():
        failed = run_cleanup(force=True, now=later())

    assert failed.status == "errors" and failed.exit_code == 1
    assert failed.error_count == 3 and re.search(backend.denial, failed.errors[0])
    assert backend.missing(strays) == []
    assert run_cleanup(force=True, now=later()).deleted_files == 3, "a rerun converges"


def test_files_already_gone_when_their_delete_comes_are_a_finding(media_root, settings):
    """Local files only: S3 reports a key already gone as deleted (see test_cleanup_s3)."""
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


def test_the_run_ends_only_once_its_last_batch_of_files_is_carried_out(media_root, settings):
    """Files go in a thread of their own, beside the database work; the run waits for them."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0
    started = threading.Event()

    class SlowWalker(FilesystemWalker):
        def delete(self, files):
            started.set()
            time.sleep(0.3)
            yield from super().delete(files)

    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")
    from django.core.files.storage import default_storage

    result = run_cleanup(walker=SlowWalker(default_storage))

    assert started.is_set() and not stray.exists()
    assert (result.deleted_files, result.status) == (1, "ok")
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("cleanup-files")]


def test_time_limit_stops_deleting_and_the_next_run_carries_on(backend):
    strays = [backend.put(f"uploads/tours/{n}.jpg") for n in range(3)]

    stopped = run_cleanup(force=True, time_limit="0", now=later())
    carried_on = run_cleanup(force=True, now=later())

    assert stopped.status == "partial" and stopped.exit_code == 0
    assert stopped.orphaned_files == 3, "the listing always completes"
    assert stopped.deleted_files == 0
    assert carried_on.deleted_files == 3
    assert backend.missing(strays) == strays


def test_rate_limits_deletions_per_second(backend):
    for n in range(6):
        backend.put(f"uploads/tours/{n}.jpg")

    started = time.monotonic()
    result = run_cleanup(force=True, rate=10, now=later())

    assert result.deleted_files == 6
    assert time.monotonic() - started >= 0.5, "6 deletions at 10 per second take at least 0.5 s"


def test_an_unsorted_walker_fails_the_run_before_any_delete(media_root):
    class UnsortedWalker(FilesystemWalker):
        def iter_pages(self):
            files = [StoredFile(f"uploads/tours/{n}.jpg", size=1, modified=0) for n in "ba"]
            yield [stored.name for stored in files], files

    strays = [factories.stray_file(media_root, f"uploads/tours/{n}.jpg") for n in "ab"]
    from django.core.files.storage import default_storage

    result = run_cleanup(force=True, walker=UnsortedWalker(default_storage))

    assert result.status == "failed" and "not sorted" in result.message
    assert all(path.exists() for path in strays)


def test_it_refuses_to_run_inside_a_transaction():
    with pytest.raises(transaction.TransactionManagementError), transaction.atomic():
        run_cleanup()


def test_queries_do_not_grow_with_rows(backend, django_assert_max_num_queries):
    """The listing is merged with rows read in name order: no query per page or per file."""

    def populate(count):
        for _ in range(count):
            owner = factories.tour()
            factories.media(owner)
            factories.delete_behind_the_orms_back(owner)
            factories.media(factories.guide())
            backend.put(f"uploads/guides/stray-{time.monotonic_ns()}.jpg")

    populate(2)
    with django_assert_max_num_queries(100) as small:
        run_cleanup(force=True, now=later())
    populate(20)

    with django_assert_max_num_queries(len(small.captured_queries)):
        assert run_cleanup(force=True, now=later()).deleted_files == 40


# -- a selection (the admin action) ----------------------------------------------------------


def test_a_selection_removes_only_its_orphaned_rows_and_their_files(backend):
    live_row = factories.media(factories.tour())
    gone_owner, other_gone_owner = factories.tour(), factories.guide()
    selected_orphan = factories.media(gone_owner)
    unselected_orphan = factories.media(other_gone_owner)
    factories.delete_behind_the_orms_back(gone_owner)
    factories.delete_behind_the_orms_back(other_gone_owner)
    stray = backend.put("uploads/tours/stray.jpg")

    result = run_cleanup(media_ids=[live_row.pk, selected_orphan.pk], now=later())

    assert (result.records_checked, result.orphaned_records, result.deleted_records) == (2, 1, 1)
    assert (result.deleted_files, result.files_checked) == (1, 0)
    assert not Media.objects.filter(pk=selected_orphan.pk).exists()
    assert not backend.exists(selected_orphan.file.name)
    assert Media.objects.filter(pk__in=[live_row.pk, unselected_orphan.pk]).count() == 2
    assert backend.exists(live_row.file.name) and backend.exists(stray)
