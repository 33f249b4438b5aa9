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
