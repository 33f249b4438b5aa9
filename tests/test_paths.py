import os

import pytest
from django.core.files.storage import FileSystemStorage

from media_app import paths


@pytest.mark.parametrize(
    "name",
    ["uploads/tours/a.jpg", "a.jpg", "uploads/..hidden/x", "uploads/tours/x..y.jpg"],
)
def test_relative_names_inside_the_root_are_safe(name):
    assert paths.is_safe_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "uploads/../../x",
        "/etc/passwd",
        "uploads/tours/..",
        "a\x00b",
        "..\\x",
        "C:/x",
        "\\\\server\\x",
    ],
)
def test_names_that_leave_the_root_are_refused(name):
    assert not paths.is_safe_name(name)


def test_a_symlinked_folder_that_leaves_the_root_is_refused(media_root, outside_dir):
    os.symlink(outside_dir, media_root / "escape")
    storage = FileSystemStorage(location=media_root)

    assert not paths.resolves_inside(storage, "escape/file.txt")
    assert paths.resolves_inside(storage, "uploads/tours/file.txt")


def test_sanitise_keeps_the_extension_of_a_long_name():
    name = paths.sanitise_filename("a" * 300 + ".jpg")

    assert name.endswith(".jpg")
    assert len(name) == paths.MAX_ORIGINAL_NAME_LENGTH


@pytest.fixture
def storage(media_root):
    return FileSystemStorage(location=media_root)


@pytest.fixture
def other_disk(tmp_path):
    """A folder outside MEDIA_ROOT where an operator moved a type folder, then linked it back."""
    path = tmp_path / "disk2"
    (path / "drivers/2019").mkdir(parents=True)
    return path


def test_names_under_a_symlinked_type_folder_resolve_inside_its_real_folder(storage, media_root, other_disk):
    (media_root / "uploads").mkdir()
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")

    assert paths.resolves_inside(storage, "uploads/drivers/a.jpg")
    assert paths.resolves_inside(storage, "uploads/drivers/2019/a.jpg")
    assert paths.resolves_inside(storage, "uploads/tours/a.jpg")


def test_a_symlinked_folder_below_a_symlinked_type_folder_is_refused(
    storage, media_root, other_disk, outside_dir
):
    (media_root / "uploads").mkdir()
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    os.symlink(outside_dir, other_disk / "drivers/escape")
    os.symlink(other_disk, other_disk / "drivers/up")

    assert not paths.resolves_inside(storage, "uploads/drivers/escape/x.jpg")
    assert not paths.resolves_inside(storage, "uploads/drivers/up/x.jpg"), "one level up is outside too"


@pytest.mark.parametrize(
    "target",
    ["uploads/guides", "uploads/guides/2019", "uploads", "media root", "above the media root"],
)
def test_a_type_folder_that_gives_files_two_names_is_not_trusted(target, storage, media_root):
    (media_root / "uploads/guides/2019").mkdir(parents=True)
    real = {"media root": media_root, "above the media root": media_root.parent}.get(
        target, media_root / target
    )
    os.symlink(real, media_root / "uploads/drivers")

    assert not paths.resolves_inside(storage, "uploads/drivers/x.jpg")
    assert paths.resolves_inside(storage, "uploads/guides/x.jpg")


def test_uploads_as_a_symlink_is_trusted_unless_it_holds_the_media_root(storage, media_root, tmp_path):
    (tmp_path / "disk2/uploads/tours").mkdir(parents=True)
    os.symlink(tmp_path / "disk2/uploads", media_root / "uploads")
    assert paths.resolves_inside(storage, "uploads/tours/a.jpg")
    assert paths.resolves_inside(storage, "uploads/a.jpg")

    os.unlink(media_root / "uploads")
    os.symlink(tmp_path, media_root / "uploads")
    assert not paths.resolves_inside(storage, "uploads/media/uploads/a.jpg")
    assert not paths.resolves_inside(storage, "uploads/a.jpg")


def test_a_check_resolves_each_folder_once(storage, media_root, other_disk, monkeypatch):
    """One realpath per folder (and one per layout folder) per batch, not one per name."""
    (media_root / "uploads/tours").mkdir(parents=True)
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    resolved = []
    realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: resolved.append(path) or realpath(path, **kw))
    check = paths.InsideCheck(storage)

    for n in range(50):
        for folder in ("tours", "drivers", "drivers/2019"):
            assert check(f"uploads/{folder}/{n}.jpg")

    # The media root, uploads/, uploads/tours, uploads/drivers and uploads/drivers/2019.
    assert len(resolved) == 5


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("uploads", True),
        ("uploads/", True),
        ("uploads/drivers", True),
        ("uploads/drivers/", True),
        ("uploads/readme.txt", True),
        ("uploads/drivers/a.jpg", False),
        ("uploads/drivers/2019/", False),
        ("uploadsx/a", False),
        ("other/uploads", False),
        ("", False),
    ],
)
def test_uploads_and_its_direct_entries_are_layout_entries(name, kept):
    assert paths.is_layout_entry(name) is kept
