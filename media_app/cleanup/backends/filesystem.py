"""The local-files backend: walk and delete the files under ``uploads/`` of a ``FileSystemStorage``.

The walk runs in a process of its own (``python -m media_app.cleanup.listing``, standard library
only) that writes the names in byte order of their full names into a pipe, so that it takes
the second core while this process streams rows from the database. The storage's marker lives
here too; the quarantine of local files is ``filesystem_quarantine.py``.
"""

import fcntl
import itertools
import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from ...paths import UPLOADS_FOLDER, UPLOADS_PREFIX, InsideCheck, UploadsLayout, in_uploads, is_layout_entry
from .. import listing
from ..prefetch import Drained
from .base import (
    KEPT_LAYOUT_ENTRY,
    LEADS_OUTSIDE,
    MARKER_NAME,
    Deletion,
    LocationMissing,
    Marker,
    StorageUnavailable,
    StoredFile,
)

logger = logging.getLogger(__name__)

PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size
# Names the listing wrote and the sweep has not taken yet, held in memory; more wait on disk.
DRAIN_MEMORY = 2 << 20
# Where ``python -m media_app.cleanup.listing`` can be imported from.
PACKAGE_PARENT = Path(__file__).resolve().parents[3]


class FilesystemWalker:
    """Walk ``uploads/`` of a local ``FileSystemStorage``, following no symlink below ``uploads/<type>``.

    ``uploads/`` and each ``uploads/<type>`` may be a symlink to a folder on another disk: it is
    walked like a folder (see ``paths.UploadsLayout``). Below that, a symlink is listed as a file
    (it may be deleted as a link; its target is never touched). Names that are not valid UTF-8 are
    counted in ``unreadable_names`` and left alone; a folder that cannot be read is reported in
    ``errors`` and skipped. A file's size and time are read (one ``lstat``) only when asked for.
    """

    # Renames into the same folders queue on the folders' locks: one batch at a time.
    concurrency = 1

    def __init__(self, storage):
        self.storage = storage
        self.root = os.path.realpath(storage.location)
        self.unreadable_names = 0
        self.errors = []

    def describe(self, name):
        """Return a listed file's ``(size, modification time)``: one ``lstat``."""
        info = os.lstat(os.path.join(self.root, name))
        return info.st_size, info.st_mtime

    def stored(self, name):
        """Return the listed file ``name``, its size and time read only when asked for."""
        return StoredFile(name, describe=self.describe)

    def iter_pages(self):
        """Return the files under ``uploads/`` in byte order of names, as pages ``(names, None)``.

        The listing gives names only: ``stored()`` gives a file whose size and time are read
        when asked for. It starts at once in a process of its own (``listing.py``), so that it
        runs on the second core while this process queries the database; ``close()`` the
        result to stop it early. Raise ``StorageUnavailable`` when ``uploads/`` is not a folder,
        or when symlinked folders would list one file under two names.
        """
        top = os.path.join(self.root, UPLOADS_FOLDER)
        if not os.path.lexists(top):
            return no_files()
        if not os.path.isdir(top):
            target = f" (a symlink to {os.readlink(top)})" if os.path.islink(top) else ""
            raise StorageUnavailable(f"{top}{target} is not a folder")
        layout = UploadsLayout(self.root)
        if layout.top() is None:
            raise StorageUnavailable(
                f"{top} is a symlink to {layout.real(top)}, which holds MEDIA_ROOT: "
                "the same files would be listed under two names"
            )
        return ListingProcess(self, top, linked_type_folders(top, layout))

    def iter_files(self):
        """Yield the files under ``uploads/`` as ``StoredFile`` objects, in byte order of names."""
        with closing(self.iter_pages()) as pages:
            for names, _ in pages:
                for name in names:
                    yield self.stored(name)

    def _take_report(self, returncode, text, read):
        try:
            report = json.loads(text)
        except ValueError:
            raise StorageUnavailable(
                f"the listing of uploads/ failed (exit {returncode}): {text[-2000:]}"
            ) from None
        if report.get("failed"):
            raise StorageUnavailable("; ".join(report["errors"]))
        if report["listed"] != read:
            # Names lost or garbled between the two processes: what was merged cannot be trusted.
            raise StorageUnavailable(
                f"the listing of uploads/ wrote {report['listed']} names and {read} were read"
            )
        self.unreadable_names += report["unreadable"]
        for path in report["unreadable_sample"]:
            logger.warning("Leaving alone %r: its name is not valid UTF-8", path)
        for message in report["errors"]:
            self.errors.append(f"uploads/: {message}")
            logger.error("Cannot list a folder under uploads/: %s; its files are left alone", message)

    def delete(self, files):
        """Delete each file (a symlink as a link); yield ``(file, outcome, detail)``.

        A folder left empty below ``uploads/<type>/`` is removed too. ``uploads/`` and its
        direct folders stay: a concurrent upload may be about to write into them.
        """
        emptied = set()
        inside = InsideCheck(self.storage)
        for stored in files:
            outcome, detail = self._delete_one(stored.name, inside)
            if outcome == Deletion.DELETED:
                emptied.add(os.path.dirname(stored.name))
            yield stored, outcome, detail
        remove_empty_folders(self.root, emptied)

    def _delete_one(self, name, inside):
        # Checked again at delete time: a folder may have become a symlink since the walk.
        if not (in_uploads(name) and inside(name)):
            return Deletion.FAILED, LEADS_OUTSIDE
        if is_layout_entry(name):
            return Deletion.FAILED, KEPT_LAYOUT_ENTRY
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


def linked_type_folders(top, layout):
    """Return the names of the symlinks directly in ``uploads/`` to walk as folders.

    Raise ``StorageUnavailable`` when one of them, or two together, would list a file under two
    names: the sweep would take the second name for an unreferenced file. A symlink whose target
    is missing (a disk not mounted) is logged; the sweep keeps it and reports its files missing.
    """
    followed = {}
    with os.scandir(top) as scan:
        for entry in scan:
            if not entry.is_symlink():
                continue
            if not entry.is_dir():
                if not os.path.exists(entry.path):
                    logger.warning(
                        "uploads/%s is a symlink to %s, which is missing: its files are reported missing",
                        entry.name,
                        os.readlink(entry.path),
                    )
                continue
            real = layout.type_folder(entry.name)
            if real is None:
                raise StorageUnavailable(
                    f"uploads/{entry.name} is a symlink to {layout.real(entry.path)}, which lies inside "
                    "uploads/ or holds it: the same files would be listed under two names"
                )
            followed[entry.name] = real
    # With a separator appended, a folder sorts right before everything below it.
    ordered = sorted((real.rstrip(os.sep) + os.sep, name) for name, real in followed.items())
    for (outer, outer_name), (inner, inner_name) in itertools.pairwise(ordered):
        if inner.startswith(outer):
            raise StorageUnavailable(
                f"uploads/{outer_name} and uploads/{inner_name} are symlinks to the same folder, or one "
                "inside the other: the same files would be listed under two names"
            )
    return sorted(followed)


def no_files():
    """Yield no page, as a closeable iterator like every listing."""
    yield from ()


class ListingProcess:
    """The pages of names a ``python -m media_app.cleanup.listing`` process lists, read from its pipe."""

    def __init__(self, walker, top, followed=()):
        self.walker = walker
        command = [sys.executable, "-m", "media_app.cleanup.listing", "--chunk", str(listing.DEFAULT_CHUNK)]
        command += [f"--follow={name}" for name in followed]
        command += ["--", top]
        self.report = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command, cwd=PACKAGE_PARENT, stdout=subprocess.PIPE, stderr=self.report
        )
        _widen_pipe(self.process.stdout)
        self.drained = Drained(self.process.stdout, DRAIN_MEMORY, name="listing pipe")
        self.names = _read_pages(self.drained.read)
        self.read = 0

    def __iter__(self):
        return self

    def __next__(self):
        try:
            names = next(self.names)
        except StopIteration:
            self._finish()
            raise
        self.read += len(names)
        return [UPLOADS_PREFIX + name for name in names], None

    def _finish(self):
        """Collect the finished listing's report (what it listed and its problems, or its failure)."""
        process, self.process = self.process, None
        if process is None:
            return
        self.drained.close()
        process.stdout.close()
        returncode = process.wait()
        with self.report:
            self.report.seek(0)
            self.walker._take_report(returncode, self.report.read().decode("utf-8", "replace"), self.read)

    def close(self):
        """Stop the listing if it still runs (the sweep stopped early)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        self.drained.close()  # its thread ends with the pipe
        process.stdout.close()
        process.wait()
        self.report.close()


def remove_empty_folders(root, folders):
    """Remove folders left empty below ``uploads/<type>/``, climbing while they are empty.

    ``uploads/`` and its direct folders stay: a concurrent upload may be about to write there.
    """
    for folder in sorted(folders, key=len, reverse=True):
        while folder.count("/") >= 2:
            try:
                os.rmdir(os.path.join(root, folder))
            except OSError:
                break  # not empty, or gone: either way, stop climbing
            logger.info("Removed empty folder %r", folder)
            folder = os.path.dirname(folder)


def _widen_pipe(stream):
    """Let the listing run ahead by up to a MiB of names while this process waits on the database.

    A pipe holds 64 KiB by default: the listing would stall each time the merge waits for a page
    of rows. Where the system refuses a larger pipe, the default only costs some speed.
    """
    try:
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError):
        pass


def _read_pages(read):
    """Yield the NUL-terminated UTF-8 names of a byte stream, in lists, one per block ``read()`` returns."""
    pending = b""
    while block := read():
        complete, _, pending = (pending + block).rpartition(b"\0")
        if complete:
            yield complete.decode("utf-8").split("\0")


def write_atomically(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file beside it, so that no reader sees half."""
    temporary = f"{path}.{os.getpid()}.{time.monotonic_ns()}"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


class FilesystemMarkerStore:
    """The marker of a local ``MEDIA_ROOT``."""

    setting = "MEDIA_ROOT"

    def __init__(self, storage):
        self.root = os.path.abspath(storage.location)
        self.path = os.path.join(self.root, MARKER_NAME)

    def describe(self):
        """Return the storage's name for messages."""
        return f"MEDIA_ROOT {self.root}"

    def read(self):
        """Return the marker, or None when there is none; raise ``LocationMissing`` without MEDIA_ROOT."""
        if not os.path.isdir(self.root):
            raise LocationMissing
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read the storage marker {self.path}: {exc}") from exc
        return Marker.parse(raw, self.path)

    def write(self, marker):
        """Write the marker, replacing any other."""
        try:
            write_atomically(self.path, marker.dumps())
        except OSError as exc:
            raise StorageUnavailable(f"cannot write the storage marker {self.path}: {exc}") from exc
