import logging
import os

import pytest
from django.core.files.storage import FileSystemStorage

from media_app.cleanup import listing
from media_app.cleanup.backends import filesystem
from media_app.cleanup.backends.base import KEPT_LAYOUT_ENTRY, Deletion, StorageUnavailable, StoredFile
from media_app.cleanup.backends.filesystem import FilesystemWalker

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
    monkeypatch.setattr(listing, "DEFAULT_CHUNK", 7)
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


@pytest.fixture
def other_disk(tmp_path):
    """Where an operator moved ``uploads/drivers``, then linked it back."""
    path = tmp_path / "disk2"
    (path / "drivers/2019").mkdir(parents=True)
    (path / "drivers/2019/a.jpg").write_bytes(b"x")
    return path


def test_a_symlinked_type_folder_is_walked_and_symlinks_below_it_are_not(walker, media_root, other_disk):
    make(media_root, ["tours/t.jpg"])
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    os.symlink(other_disk, other_disk / "drivers/up")

    listed = [stored.name for stored in walker.iter_files()]

    assert listed == ["uploads/drivers/2019/a.jpg", "uploads/drivers/up", "uploads/tours/t.jpg"]
    assert walker.errors == []


def test_uploads_as_a_symlink_to_a_folder_is_walked(walker, media_root, other_disk):
    os.symlink(other_disk, media_root / "uploads")

    assert [stored.name for stored in walker.iter_files()] == ["uploads/drivers/2019/a.jpg"]


@pytest.mark.parametrize("target", ["media root", "above the media root", "missing"])
def test_an_uploads_symlink_that_holds_the_media_root_or_nothing_is_unavailable(target, walker, media_root):
    real = {"media root": media_root, "above the media root": media_root.parent}.get(target)
    os.symlink(real or media_root.parent / "missing", media_root / "uploads")

    with pytest.raises(StorageUnavailable, match="MEDIA_ROOT" if real else "is not a folder"):
        list(walker.iter_files())


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ({"drivers": "uploads/guides"}, "uploads/drivers is a symlink"),
        ({"drivers": "uploads/guides/2019"}, "uploads/drivers is a symlink"),
        ({"drivers": "media root"}, "uploads/drivers is a symlink"),
        ({"drivers": "disk2/drivers", "guides2": "disk2/drivers"}, "guides2 are symlinks"),
        ({"drivers": "disk2/drivers", "zz": "disk2/drivers/2019"}, "drivers and uploads/zz are symlinks"),
        ({"aa": "disk2", "drivers": "disk2/drivers"}, "aa and uploads/drivers are symlinks"),
    ],
)
def test_type_folders_that_give_a_file_two_names_make_the_storage_unavailable(
    links, message, walker, media_root, other_disk
):
    make(media_root, ["guides/2019/g.jpg"])
    places = {"media root": media_root}
    for name, target in links.items():
        real = (
            places.get(target) or (other_disk.parent if target.startswith("disk2") else media_root) / target
        )
        os.symlink(real, media_root / "uploads" / name)

    with pytest.raises(StorageUnavailable, match=message):
        list(walker.iter_files())


def test_a_type_folder_linked_to_a_missing_folder_is_listed_as_an_entry(walker, media_root, tmp_path, caplog):
    make(media_root, ["tours/t.jpg"])
    os.symlink(tmp_path / "unmounted/drivers", media_root / "uploads/drivers")

    with caplog.at_level(logging.WARNING, logger="media_app"):
        listed = [stored.name for stored in walker.iter_files()]

    assert listed == ["uploads/drivers", "uploads/tours/t.jpg"]
    assert any("uploads/drivers is a symlink to" in r.getMessage() for r in caplog.records)
    assert walker.errors == []


def test_delete_never_removes_uploads_or_its_direct_entries(walker, media_root, other_disk):
    make(media_root, ["tours/t.jpg", "readme.txt"])
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    os.symlink(media_root / "uploads/readme.txt", media_root / "uploads/file-link")
    os.symlink(media_root / "missing", media_root / "uploads/dangling")
    os.mkfifo(media_root / "uploads/fifo")
    (media_root / "uploads/empty").mkdir()
    names = ["uploads/", "uploads/tours", "uploads/drivers", "uploads/drivers/"]
    names += ["uploads/readme.txt", "uploads/file-link", "uploads/dangling", "uploads/fifo", "uploads/empty"]
    before = direct_entries(media_root / "uploads")

    outcomes = {
        stored.name: (outcome, detail) for stored, outcome, detail in walker.delete(map(StoredFile, names))
    }

    assert set(outcomes.values()) == {(Deletion.FAILED, KEPT_LAYOUT_ENTRY)}
    assert direct_entries(media_root / "uploads") == before
    assert (media_root / "uploads/readme.txt").read_bytes() == b"x"


def direct_entries(folder):
    """Return each entry of ``folder`` with its inode, type and link target (a fifo is never opened)."""
    return {
        entry.name: (entry.inode(), entry.stat(follow_symlinks=False).st_mode, os.path.realpath(entry.path))
        for entry in os.scandir(folder)
    }


def test_delete_goes_through_a_symlinked_type_folder_and_keeps_it(walker, media_root, other_disk):
    (media_root / "uploads").mkdir()
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    (other_disk / "drivers/b.jpg").write_bytes(b"x")

    outcomes = [
        outcome
        for _, outcome, _ in walker.delete(
            map(StoredFile, ["uploads/drivers/2019/a.jpg", "uploads/drivers/b.jpg"])
        )
    ]

    assert outcomes == [Deletion.DELETED, Deletion.DELETED]
    assert os.listdir(other_disk / "drivers") == [], "the emptied folder below goes"
    assert os.path.islink(media_root / "uploads/drivers"), "the type folder's link stays"


def test_a_listing_process_that_dies_makes_the_storage_unavailable(walker, media_root, monkeypatch, tmp_path):
    make(media_root, ["tours/a.jpg"])
    monkeypatch.setattr(
        filesystem, "PACKAGE_PARENT", tmp_path
    )  # the child cannot import the listing from here

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


def test_names_lost_between_the_listing_and_the_sweep_fail_the_listing(walker, media_root, monkeypatch):
    """The listing says how many names it wrote; a pipe that lost some cannot pass for a full listing."""
    make(media_root, [f"tours/{n}.jpg" for n in range(3)])
    read_pages = filesystem._read_pages

    def losing_one(read):
        for names in read_pages(read):
            yield names[1:]

    monkeypatch.setattr(filesystem, "_read_pages", losing_one)

    with pytest.raises(StorageUnavailable, match="wrote 3 names and 2 were read"):
        list(walker.iter_files())


def test_the_listing_runs_to_its_end_while_the_sweep_reads_nothing(walker, media_root, monkeypatch):
    """Waiting on the database must not stall the walk: what the sweep has not read waits on disk."""
    names = sorted(f"tours/{n:05d}-{'x' * 80}.jpg" for n in range(1_500))  # ~140 KB of names
    make(media_root, names)
    monkeypatch.setattr(filesystem, "PIPE_SIZE", 4096)
    monkeypatch.setattr(filesystem, "DRAIN_MEMORY", 8192)

    pages = walker.iter_pages()
    try:
        pages.process.wait(timeout=60)  # nothing read yet
        assert pages.drained.written > 100_000
        listed = [name for page, _ in pages for name in page]
    finally:
        pages.close()

    assert listed == [f"uploads/{name}" for name in names]
