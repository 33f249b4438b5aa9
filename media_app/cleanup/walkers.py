"""Walkers list the stored files under ``uploads/`` in byte order of their names, and delete them.

A walker is the only part of the sweep that knows a storage backend. It yields ``StoredFile``
objects sorted by name (UTF-8 byte order, which is Python's ``str`` order), so that the engine
can merge them with rows ordered the same way; and it deletes a batch of files, reporting each.
"""

import heapq
import logging
import os
import stat
import tempfile

from ..models import UPLOADS_FOLDER
from ..paths import resolves_inside

logger = logging.getLogger(__name__)

PREFIX = UPLOADS_FOLDER + "/"
# Entries of one folder held in memory before sorted runs spill to disk: flat memory even
# when a single folder holds millions of files.
FOLDER_CHUNK = 50_000


class StorageUnavailable(Exception):
    """The storage cannot be listed at all: the run cannot go on."""


class StoredFile:
    """A stored file; its size and modification time are read only when the sweep needs them."""

    __slots__ = ("name", "_size", "_modified", "_describe")

    def __init__(self, name, size=None, modified=None, describe=None):
        self.name = name
        self._size = size
        self._modified = modified
        self._describe = describe

    def _load(self):
        self._size, self._modified = self._describe(self.name)

    @property
    def size(self):
        if self._size is None and self._describe:
            self._load()
        return self._size

    @property
    def modified(self):
        """Modification time as a POSIX timestamp."""
        if self._modified is None and self._describe:
            self._load()
        return self._modified

    def __repr__(self):
        return f"StoredFile({self.name!r})"


class Deletion:
    """Outcomes of deleting one file."""

    DELETED = "deleted"
    GONE = "gone"  # already gone when its delete came: a finding, not an error
    FAILED = "failed"


def walker_for(storage):
    """Return the walker that lists and deletes files of ``storage``."""
    return FilesystemWalker(storage)


def is_utf8(name):
    """Return True for a name that decoded cleanly (no surrogate escapes from bad bytes)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FilesystemWalker:
    """Walk ``uploads/`` of a local ``FileSystemStorage`` without ever following a symlink.

    A symlink is listed as a file (it may be deleted as a link; its target is never touched).
    Names that are not valid UTF-8 are counted in ``unreadable_names`` and left alone; a folder
    that cannot be read is reported in ``errors`` and skipped.
    """

    def __init__(self, storage, spill_dir=None):
        self.storage = storage
        self.root = os.path.realpath(storage.location)
        self.spill_dir = spill_dir
        self.unreadable_names = 0
        self.errors = []

    def _describe(self, name):
        info = os.lstat(os.path.join(self.root, name))
        return info.st_size, info.st_mtime

    def iter_files(self):
        """Yield every file under ``uploads/`` as a ``StoredFile``, in byte order of names."""
        top = os.path.join(self.root, UPLOADS_FOLDER)
        if not os.path.lexists(top):
            return
        if os.path.islink(top) or not os.path.isdir(top):
            raise StorageUnavailable(f"{top} is not a folder (a symlink is not followed)")
        try:
            entries = self._sorted_entries(top)
        except OSError as exc:
            raise StorageUnavailable(f"cannot list {top}: {exc}") from exc
        yield from self._walk(PREFIX, entries)

    def _walk(self, prefix, entries):
        for entry in entries:
            if entry.endswith("/"):
                folder = prefix + entry
                try:
                    children = self._sorted_entries(os.path.join(self.root, folder))
                except OSError as exc:
                    self.errors.append(f"cannot list {folder}: {exc.strerror or exc}")
                    logger.error("Cannot list %r: %s; its files are left alone", folder, exc)
                    continue
                yield from self._walk(folder, children)
            else:
                yield StoredFile(prefix + entry, describe=self._describe)

    def _sorted_entries(self, path):
        """Return a folder's entries in an order that makes the whole walk byte-ordered.

        A folder sorts as ``name/``, so that ``a/b`` comes after ``a-b`` as it does in a
        plain string sort of the full names. Past ``FOLDER_CHUNK`` entries, sorted runs spill
        to temporary files outside ``MEDIA_ROOT`` and are merged back lazily.
        """
        runs, chunk = [], []
        with os.scandir(path) as scan:
            for entry in scan:
                name = entry.name
                if not is_utf8(name):
                    self.unreadable_names += 1
                    logger.warning("Leaving alone %r: its name is not valid UTF-8", os.path.join(path, name))
                    continue
                chunk.append(name + "/" if entry.is_dir(follow_symlinks=False) else name)
                if len(chunk) >= FOLDER_CHUNK:
                    runs.append(self._spill_run(chunk))
                    chunk = []
        chunk.sort()
        if not runs:
            return chunk
        runs.append(chunk)
        return heapq.merge(*runs)

    def _spill_run(self, names):
        names.sort()
        handle = tempfile.TemporaryFile(mode="w+", encoding="utf-8", dir=self.spill_dir)
        # NUL cannot occur in a file name, so it separates names safely.
        handle.write("\0".join(names))
        handle.seek(0)
        return _read_nul_separated(handle)

    def delete(self, files):
        """Delete each file (a symlink as a link); yield ``(file, outcome, detail)``.

        A folder left empty below ``uploads/<type>/`` is removed too. ``uploads/`` and its
        direct folders stay: a concurrent upload may be about to write into them.
        """
        emptied = set()
        for stored in files:
            outcome, detail = self._delete_one(stored.name)
            if outcome == Deletion.DELETED:
                emptied.add(os.path.dirname(stored.name))
            yield stored, outcome, detail
        self._remove_empty_folders(emptied)

    def _delete_one(self, name):
        # Checked again at delete time: a folder may have become a symlink since the walk.
        if not (name.startswith(PREFIX) and resolves_inside(self.storage, name)):
            return Deletion.FAILED, "refused: the path leads outside uploads/"
        path = os.path.join(self.root, name)
        try:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                os.unlink(path)
            elif stat.S_ISREG(mode):
                self.storage.delete(name)
            else:
                return Deletion.FAILED, "refused: not a regular file or symlink"
        except FileNotFoundError:
            return Deletion.GONE, ""
        except Exception as exc:  # any storage error: counted, and the run goes on
            return Deletion.FAILED, f"{type(exc).__name__}: {exc}"
        return Deletion.DELETED, ""

    def _remove_empty_folders(self, folders):
        for folder in sorted(folders, key=len, reverse=True):
            while folder.count("/") >= 2:  # below uploads/<type>/
                try:
                    os.rmdir(os.path.join(self.root, folder))
                except OSError:
                    break  # not empty, or gone: either way, stop climbing
                logger.info("Removed empty folder %r", folder)
                folder = os.path.dirname(folder)


def _read_nul_separated(handle, block_size=1 << 16):
    with handle:
        tail = ""
        while block := handle.read(block_size):
            parts = (tail + block).split("\0")
            tail = parts.pop()
            yield from parts
        if tail:
            yield tail
