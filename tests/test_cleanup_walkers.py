import os
import subprocess
import sys

import pytest
from django.core.files.storage import FileSystemStorage

from media_app.cleanup import walkers
from media_app.cleanup.walkers import Deletion, FilesystemWalker, StorageUnavailable, StoredFile

NAMES = [
    "a-b.jpg",
    "a/b.jpg",
    "a/c/d.jpg",
    "a.jpg",
    "b",
    "Z.jpg",
    "é.jpg",
    "日本.jpg",
    "a b.jpg",
    "new\nline",
]


@pytest.fixture
def walker(media_root):
    return FilesystemWalker(FileSystemStorage(location=media_root))


def make(media_root, names):
    for name in names:
        path = media_root / "uploads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_files_come_in_byte_order_of_their_full_names(walker, media_root):
    make(media_root, NAMES)

    listed = [stored.name for stored in walker.iter_files()]

    expected = sorted(f"uploads/{name}" for name in NAMES)
    assert listed == expected
    assert sorted(name.encode() for name in listed) == [name.encode() for name in listed]


def test_a_folder_larger_than_a_chunk_spills_and_still_comes_sorted(walker, media_root, monkeypatch):
    monkeypatch.setattr(walkers, "FOLDER_CHUNK", 7)
    names = [f"tours/{n:03d}-{'x' * (n % 5)}.jpg" for n in range(100)][::-1] + ["tours/sub/a.jpg"]
    make(media_root, names)

    listed = [stored.name for stored in walker.iter_files()]

    assert listed == sorted(f"uploads/{name}" for name in names)


def test_size_and_time_are_read_lazily_from_lstat(walker, media_root):
    make(media_root, ["tours/a.jpg"])

    (stored,) = walker.iter_files()

    assert stored._size is None
    assert stored.size == 1
    assert stored.modified == os.lstat(media_root / "uploads/tours/a.jpg").st_mtime


def test_no_uploads_folder_means_no_files(walker):
    assert list(walker.iter_files()) == []


def test_a_folder_that_cannot_be_listed_is_an_error_not_a_failure(walker, media_root):
    """A path longer than PATH_MAX cannot be listed (ENAMETOOLONG), even by root."""
    make(media_root, ["tours/a.jpg"])
    folder = os.open(media_root / "uploads", os.O_RDONLY)
    try:
        for _ in range(20):  # 20 folders of 250 characters: deeper than PATH_MAX (4096)
            os.mkdir("d" * 250, dir_fd=folder)
            deeper = os.open("d" * 250, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = deeper
        os.close(os.open("deep.jpg", os.O_CREAT | os.O_WRONLY, dir_fd=folder))
    finally:
        os.close(folder)

    listed = [stored.name for stored in walker.iter_files()]

    assert listed == ["uploads/tours/a.jpg"]
    assert len(walker.errors) == 1 and "File name too long" in walker.errors[0]


def test_an_unlistable_uploads_folder_makes_the_storage_unavailable(walker, media_root):
    (media_root / "uploads").write_text("not a folder")

    with pytest.raises(StorageUnavailable):
        list(walker.iter_files())


def test_delete_reports_each_outcome(walker, media_root, outside_dir):
    make(media_root, ["tours/a.jpg"])
    os.symlink(outside_dir, media_root / "uploads/tours/escape")
    (outside_dir / "x.jpg").write_bytes(b"keep")
    names = ("uploads/tours/a.jpg", "uploads/tours/gone.jpg", "uploads/tours/escape/x.jpg", "other/x.jpg")
    files = [StoredFile(name) for name in names]

    outcomes = [(stored.name, outcome) for stored, outcome, _ in walker.delete(files)]

    assert outcomes == [
        ("uploads/tours/a.jpg", Deletion.DELETED),
        ("uploads/tours/gone.jpg", Deletion.GONE),
        ("uploads/tours/escape/x.jpg", Deletion.FAILED),
        ("other/x.jpg", Deletion.FAILED),
    ]
    assert (outside_dir / "x.jpg").read_bytes() == b"keep"


def test_a_listing_process_that_dies_makes_the_storage_unavailable(walker, media_root, monkeypatch, tmp_path):
    make(media_root, ["tours/a.jpg"])
    monkeypatch.setattr(walkers, "PACKAGE_PARENT", tmp_path)  # the child cannot import the listing from here

    with pytest.raises(StorageUnavailable, match="listing of uploads/ failed"):
        list(walker.iter_files())


def test_stopping_early_ends_the_listing_process(walker, media_root):
    make(media_root, [f"tours/{n:05d}.jpg" for n in range(5000)])
    files = walker.iter_files()

    first = next(files)
    files.close()

    assert first.name == "uploads/tours/00000.jpg"
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_listing_child(p)]


def _is_listing_child(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
        with open(f"/proc/{pid}/stat") as handle:
            parent = int(handle.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return False
    return b"media_app.cleanup.listing" in command and parent == os.getpid()


def test_a_sweep_of_local_files_never_imports_boto3(settings):
    """boto3 costs a fifth of a second and 20 MiB to import: local files must not pay for it."""
    program = (
        "import sys, django; django.setup(); from django.core.files.storage import default_storage; "
        "from media_app.cleanup.walkers import walker_for; "
        "from media_app.cleanup.quarantine import quarantine_for; "
        "from media_app.cleanup import engine; walker_for(default_storage); quarantine_for(default_storage); "
        "print(sorted(name for name in ('boto3', 'botocore') if name in sys.modules))"
    )
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mediaproject.settings",
        "ENV_FILE": "",
        "SECRET_KEY": "k",
        "MEDIA_ROOT": settings.MEDIA_ROOT,
    }

    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
