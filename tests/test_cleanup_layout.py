"""The sweep and the normal delete path on the layouts operators make of ``uploads/``.

A type folder moved to another disk and linked back, ``uploads/`` itself moved the same way,
odd entries directly in ``uploads/``: nothing in use is lost, and ``uploads/`` and its direct
entries are never removed.
"""

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from media_app.cleanup.backends.base import KEPT_LAYOUT_ENTRY, MARKER_NAME, Deletion, StoredFile
from media_app.cleanup.backends.filesystem_quarantine import FilesystemQuarantine
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.restore import restore_run
from media_app.models import Media
from tests import factories
from tests.backends import later
from tests.conftest import tree

pytestmark = pytest.mark.django_db(transaction=True)
KEPT = "kept entry of uploads/"


@pytest.fixture(params=["same file system", "another file system"])
def other_disk(request, tmp_path):
    """Where an operator moved a folder of uploads: beside MEDIA_ROOT, or on a file system of its own."""
    if request.param == "same file system":
        path = tmp_path / "disk2"
        path.mkdir()
        yield path
        return
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip(f"{shm} is not a file system of its own here")
    path = Path(tempfile.mkdtemp(dir=shm, prefix="disk2-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def drivers_moved(media_root, other_disk):
    """``uploads/drivers`` lives on the other disk, linked back into MEDIA_ROOT."""
    (other_disk / "drivers").mkdir()
    (media_root / "uploads").mkdir()
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    return other_disk / "drivers"


def age(path, days=3):
    """Make ``path`` (a symlink itself, not its target) ``days`` old."""
    then = time.time() - days * 86400
    os.utime(path, (then, then), follow_symlinks=False)


def test_a_moved_type_folder_is_walked_and_kept_and_its_strays_are_restorable(
    media_root, drivers_moved, outside_dir
):
    photos = [factories.media(factories.driver(), name="photo.jpg").file.name for _ in range(3)]
    tour_photo = factories.media(factories.tour()).file.name
    strays = [factories.stray_file(media_root, f"uploads/drivers/2019/stray-{n}.jpg") for n in range(2)]
    factories.stray_file(outside_dir, "old.jpg")
    media_before, outside_before = tree(media_root), tree(outside_dir)
    kept_on_disk2 = {path: v for path, v in tree(drivers_moved).items() if "2019" not in path}

    result = run_cleanup()

    assert result.status == "ok", result.message
    assert (result.files_checked, result.orphaned_files, result.deleted_files) == (6, 2, 2)
    assert result.missing_files == 0 and result.quarantined_bytes == 2 * len(b"stray")
    marker = str(media_root / MARKER_NAME)  # the storage's own marker is all a first run adds
    assert tree(media_root) == {**media_before, marker: tree(media_root)[marker]}, (
        "the link and everything beside it stay"
    )
    assert tree(drivers_moved) == kept_on_disk2, "the strays (and the folder they left empty) went"
    assert all((media_root / name).read_bytes() == b"not really a jpeg" for name in photos + [tour_photo])
    assert tree(outside_dir) == outside_before

    restored = restore_run(result.run_id)

    assert (restored.status, restored.restored_files) == ("ok", 2)
    assert [(drivers_moved / "2019" / path.name).read_bytes() for path in strays] == [b"stray", b"stray"]
    assert os.path.islink(media_root / "uploads/drivers")


@pytest.mark.parametrize(
    "kind",
    ["folder", "symlink to a folder", "symlink to a file", "dangling symlink", "regular file", "fifo"],
)
def test_every_kind_of_direct_entry_of_uploads_is_kept(kind, media_root, tmp_path):
    factories.media(factories.tour())
    entry = media_root / "uploads/entry"
    target = tmp_path / "target"
    if kind == "folder":
        entry.mkdir()
    elif kind == "symlink to a folder":
        target.mkdir()
        os.symlink(target, entry)
    elif kind == "symlink to a file":
        target.write_bytes(b"target")
        os.symlink(target, entry)
    elif kind == "dangling symlink":
        os.symlink(target, entry)
    elif kind == "regular file":
        entry.write_bytes(b"entry")
    else:
        os.mkfifo(entry)
    age(entry)
    before = [(e.name, e.inode(), e.stat(follow_symlinks=False).st_mode) for e in os.scandir(entry.parent)]

    result = run_cleanup(force=True)

    assert (result.status, result.error_count, result.deleted_files) == ("ok", 0, 0), result.errors
    assert [
        (e.name, e.inode(), e.stat(follow_symlinks=False).st_mode) for e in os.scandir(entry.parent)
    ] == before
    walked = kind in ("folder", "symlink to a folder")
    assert result.sample.get(KEPT) == (None if walked else ["uploads/entry"])


@pytest.mark.parametrize("selected", [False, True], ids=["sweep", "the admin's selection"])
def test_an_orphaned_row_naming_a_direct_entry_goes_without_it(media_root, selected):
    factories.stray_file(media_root, "uploads/readme.txt")
    owner = factories.tour()
    row = Media.objects.create(content_object=owner, file="uploads/readme.txt")
    factories.delete_behind_the_orms_back(owner)

    result = run_cleanup(force=True, media_ids=[row.pk] if selected else None)

    assert (result.status, result.deleted_records, result.deleted_files) == ("ok", 1, 0)
    assert not Media.objects.filter(pk=row.pk).exists()
    assert (media_root / "uploads/readme.txt").read_bytes() == b"stray"


def test_a_type_folder_linked_to_a_missing_disk_is_kept_and_its_files_are_missing(
    media_root, tmp_path, caplog
):
    photos = [factories.media(factories.driver()).file.name for _ in range(2)]
    shutil.rmtree(media_root / "uploads/drivers")
    os.symlink(tmp_path / "unmounted/drivers", media_root / "uploads/drivers")
    age(media_root / "uploads/drivers")

    with caplog.at_level(logging.WARNING, logger="media_app"):
        result = run_cleanup(force=True)

    assert (result.status, result.missing_files, result.deleted_files) == ("ok", 2, 0)
    assert result.sample[KEPT] == ["uploads/drivers"]
    assert os.readlink(media_root / "uploads/drivers") == str(tmp_path / "unmounted/drivers")
    assert Media.objects.filter(file__in=photos).count() == 2
    assert any("which is missing" in record.getMessage() for record in caplog.records)


def test_uploads_as_a_symlink_to_a_folder_is_walked_and_kept(media_root, other_disk):
    (other_disk / "uploads").mkdir()
    os.symlink(other_disk / "uploads", media_root / "uploads")
    photo = factories.media(factories.tour()).file.name
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")

    result = run_cleanup()

    assert (result.status, result.deleted_files) == ("ok", 1), result.message
    assert (other_disk / photo).exists() and not stray.exists()
    assert os.readlink(media_root / "uploads") == str(other_disk / "uploads")
    assert restore_run(result.run_id).status == "ok"
    assert (other_disk / "uploads/tours/stray.jpg").read_bytes() == b"stray"


@pytest.mark.parametrize("target", ["the media root", "above the media root", "a missing folder"])
def test_uploads_linked_to_the_media_root_or_nothing_fails_the_run(target, media_root, tmp_path):
    photo = factories.media(factories.tour()).file.name
    shutil.move(media_root / "uploads", tmp_path / "moved")
    real = {"the media root": media_root, "above the media root": tmp_path}.get(target, tmp_path / "missing")
    os.symlink(real, media_root / "uploads")
    before = tree(tmp_path)

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.exit_code, result.deleted_files) == ("failed", 1, 0)
    assert "StorageUnavailable" in result.message and "\n" not in result.message
    assert tree(tmp_path) == before
    assert Media.objects.filter(file=photo).exists()


def test_type_folders_that_give_a_file_two_names_fail_the_run_before_anything_goes(media_root):
    """An operator merged drivers into guides and linked drivers to guides: rows name both."""
    guide_photo = factories.media(factories.guide()).file.name
    driver_photos = [factories.media(factories.driver()).file.name for _ in range(2)]
    for name in driver_photos:
        os.rename(media_root / name, media_root / "uploads/guides" / os.path.basename(name))
    os.rmdir(media_root / "uploads/drivers")
    os.symlink("guides", media_root / "uploads/drivers")
    before = tree(media_root)

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.deleted_files) == ("failed", 0)
    assert "uploads/drivers is a symlink" in result.message and "two names" in result.message
    assert tree(media_root) == before
    assert all((media_root / name).exists() for name in driver_photos + [guide_photo])


def test_deleting_a_driver_removes_its_photo_from_the_other_disk(media_root, drivers_moved):
    driver = factories.driver()
    name = factories.media(driver).file.name
    on_disk2 = drivers_moved / os.path.basename(name)
    assert on_disk2.exists()

    driver.delete()

    assert not on_disk2.exists()
    assert os.path.islink(media_root / "uploads/drivers")


def test_a_symlinked_folder_below_a_moved_type_folder_is_never_followed(
    media_root, drivers_moved, outside_dir, caplog
):
    secret = factories.stray_file(outside_dir, "secret.jpg")
    os.symlink(outside_dir, drivers_moved / "escape")
    age(drivers_moved / "escape")
    driver = factories.driver()
    row = factories.media(driver)
    Media.objects.filter(pk=row.pk).update(file="uploads/drivers/escape/secret.jpg")
    outside_before = tree(outside_dir)

    with caplog.at_level(logging.WARNING, logger="media_app"):
        driver.delete()
    result = run_cleanup(force=True, now=later())

    assert any("outside the media storage" in record.getMessage() for record in caplog.records)
    assert result.status == "ok" and "uploads/drivers/escape" in result.sample["quarantined file"]
    assert not os.path.lexists(drivers_moved / "escape"), "the link goes as a link"
    assert tree(outside_dir) == outside_before
    assert secret.read_bytes() == b"stray"


def test_the_quarantine_refuses_uploads_direct_entries_at_delete_time(media_root, quarantine_root, tmp_path):
    """Defence in depth: the sweep never offers them, and the quarantine would not take them."""
    (tmp_path / "disk2").mkdir()
    factories.stray_file(media_root, "uploads/readme.txt")
    os.symlink(tmp_path / "disk2", media_root / "uploads/drivers")
    os.symlink(tmp_path / "missing", media_root / "uploads/dangling")
    names = ["uploads/", "uploads/readme.txt", "uploads/drivers", "uploads/drivers/", "uploads/dangling"]
    before = tree(media_root)

    moves = FilesystemQuarantine(default_storage, quarantine_root).move_in("run", map(StoredFile, names))

    assert {(outcome, detail) for _, outcome, detail in moves} == {(Deletion.FAILED, KEPT_LAYOUT_ENTRY)}
    assert tree(media_root) == before


def test_the_normal_path_never_deletes_a_direct_entry_of_uploads(media_root, caplog):
    owner = factories.tour()
    row = Media.objects.create(content_object=owner, file="uploads/readme.txt")
    factories.stray_file(media_root, "uploads/readme.txt")

    with caplog.at_level(logging.WARNING, logger="media_app"):
        owner.delete()

    assert not Media.objects.filter(pk=row.pk).exists()
    assert (media_root / "uploads/readme.txt").read_bytes() == b"stray"
    assert any("never removed" in record.getMessage() for record in caplog.records)
