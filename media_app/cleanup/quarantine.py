"""The quarantine: where a real sweep moves what it removes, so that a run can be taken back.

Each run that removed something has a folder (or, on object storage, a key prefix) named by
its run id, holding the files under their original paths and a manifest of the rows::

    <run id>/meta.json                 {"run_id": ..., "created": <POSIX time>}
    <run id>/manifest-00001.jsonl      one JSON object per line: a file or a deleted row
    <run id>/uploads/tours/ab12-x.jpg  the file, at its original path

A manifest part is written before the files of its batch move and before its rows go, so a
run killed midway still describes everything it touched. The quarantine is never under
``uploads/``, never public and never listed as uploads. It describes itself: a restore needs
no run history, only the run id.

On local files it is a folder outside ``MEDIA_ROOT`` (``MEDIA_CLEANUP_QUARANTINE_ROOT``); on S3
a key prefix outside ``uploads/`` (``MEDIA_CLEANUP_QUARANTINE_PREFIX``), reached by a
server-side copy then a batched delete.
"""

import errno
import json
import logging
import os
import shutil
import time

from django.core.files.storage import FileSystemStorage, default_storage

from .. import conf
from ..paths import InsideCheck, in_uploads, is_layout_entry
from .walkers import KEPT_LAYOUT_ENTRY, Deletion, remove_empty_folders

logger = logging.getLogger(__name__)

META = "meta.json"
MANIFEST_PREFIX = "manifest-"


class QuarantineError(Exception):
    """The quarantine is misconfigured or cannot be written: the run cannot go on."""


class Restored:
    """Outcomes of putting one file back."""

    RESTORED = "restored"
    EXISTS = "exists"  # a file is at the original path again: never overwritten
    MISSING = "missing"  # not in the quarantine (a run killed between manifest and move)
    FAILED = "failed"


def _move(source, target):
    """Move a file (or a symlink, as a link): a rename on one filesystem, else copy then delete.

    A rename never follows a symlink and, unlike ``shutil.move``, costs no ``stat`` calls first;
    the quarantine lies on another filesystem only when it is configured so.
    """
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(source, target)


class FilesystemQuarantine:
    """A quarantine in a folder outside ``MEDIA_ROOT``: a rename there, or a copy then a delete."""

    def __init__(self, storage, root):
        self.storage = storage
        self.media_root = os.path.realpath(storage.location)
        self.root = os.path.realpath(root)
        if self.root == self.media_root or (self.root + os.sep).startswith(self.media_root + os.sep):
            raise QuarantineError(f"the quarantine {self.root} lies inside MEDIA_ROOT: it would be public")
        if (self.media_root + os.sep).startswith(self.root + os.sep):
            raise QuarantineError(f"MEDIA_ROOT lies inside the quarantine {self.root}")

    def _run_dir(self, run_id):
        return os.path.join(self.root, str(run_id))

    def begin(self, run_id, now):
        """Open the run's quarantine, stamped with the engine's clock (retention counts from it)."""
        folder = self._run_dir(run_id)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            meta = os.path.join(folder, META)
            if not os.path.exists(meta):
                _write_json(meta, {"run_id": str(run_id), "created": now.timestamp()})
        except OSError as exc:
            raise QuarantineError(f"cannot write the quarantine {folder}: {exc}") from exc

    def record(self, run_id, part, entries):
        """Write one manifest part (a batch's files or rows) before the batch is carried out."""
        path = os.path.join(self._run_dir(run_id), f"{MANIFEST_PREFIX}{part:05d}.jsonl")
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise QuarantineError(f"cannot write the quarantine manifest {path}: {exc}") from exc

    def move_in(self, run_id, files):
        """Move each file into the run's quarantine; yield ``(file, outcome, detail)`` as a walker does."""
        emptied = set()
        made = set()  # target folders made in this batch: one makedirs per folder, not per file
        inside = InsideCheck(self.storage)
        run_dir = self._run_dir(run_id)
        for stored in files:
            if not (in_uploads(stored.name) and inside(stored.name)):
                yield stored, Deletion.FAILED, "refused: the path leads outside uploads/"
                continue
            if is_layout_entry(stored.name):
                yield stored, Deletion.FAILED, KEPT_LAYOUT_ENTRY
                continue
            source = os.path.join(self.media_root, stored.name)
            target = os.path.join(run_dir, stored.name)
            try:
                folder = os.path.dirname(target)
                if folder not in made:
                    os.makedirs(folder, mode=0o700, exist_ok=True)
                    made.add(folder)
                _move(source, target)
            except FileNotFoundError as exc:
                if not os.path.lexists(source):
                    yield stored, Deletion.GONE, ""
                    continue
                yield stored, Deletion.FAILED, f"{type(exc).__name__}: {exc}"
                continue
            except OSError as exc:
                yield stored, Deletion.FAILED, f"{type(exc).__name__}: {exc}"
                continue
            emptied.add(os.path.dirname(stored.name))
            yield stored, Deletion.DELETED, ""
        remove_empty_folders(self.media_root, emptied)

    def runs(self):
        """Return ``{run id: created POSIX time}`` of every quarantined run."""
        found = {}
        if not os.path.isdir(self.root):
            return found
        for entry in os.scandir(self.root):
            meta = os.path.join(entry.path, META)
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(meta):
                with open(meta, encoding="utf-8") as handle:
                    found[entry.name] = json.load(handle)["created"]
        return found

    def entries(self, run_id):
        """Yield the manifest entries of a run, part by part."""
        folder = self._run_dir(run_id)
        for part in sorted(name for name in os.listdir(folder) if name.startswith(MANIFEST_PREFIX)):
            with open(os.path.join(folder, part), encoding="utf-8") as handle:
                for line in handle:
                    yield json.loads(line)

    def move_back(self, run_id, names, dry_run=False):
        """Put files back at their original paths with a fresh modification time; yield outcomes.

        With ``dry_run``, only tell what would happen.
        """
        inside = InsideCheck(self.storage)
        for name in names:
            source = os.path.join(self._run_dir(run_id), name)
            target = os.path.join(self.media_root, name)
            if not (in_uploads(name) and inside(name)):
                yield name, Restored.FAILED, "refused: the path leads outside uploads/"
                continue
            try:
                if os.path.lexists(target):
                    yield name, Restored.EXISTS, "a file is there again; left as it is"
                    continue
                if not os.path.lexists(source):
                    yield name, Restored.MISSING, "not in the quarantine"
                    continue
                if not dry_run:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.move(source, target)
                    if not os.path.islink(target):
                        os.utime(target)  # fresh: the grace period protects it if no row comes back
            except OSError as exc:
                yield name, Restored.FAILED, f"{type(exc).__name__}: {exc}"
                continue
            yield name, Restored.RESTORED, ""

    def size(self, run_id):
        """Return the bytes of the files a run's quarantine holds."""
        folder = self._run_dir(run_id)
        return sum(
            os.lstat(os.path.join(path, name)).st_size
            for path, _, names in os.walk(folder)
            for name in names
            if not (path == folder and (name == META or name.startswith(MANIFEST_PREFIX)))
        )

    def purge(self, run_id):
        """Delete a run's quarantine for good; return the bytes of files it held."""
        size = self.size(run_id)
        shutil.rmtree(self._run_dir(run_id))
        return size


def _write_json(path, value):
    temporary = f"{path}.{os.getpid()}.{time.monotonic_ns()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(temporary, path)


def quarantine_for(storage=None):
    """Return the quarantine that goes with ``storage`` (default: the media storage)."""
    storage = storage or default_storage
    if isinstance(storage, FileSystemStorage):
        return FilesystemQuarantine(storage, conf.quarantine_root())
    # Imported only here: boto3 is slow to import, and local files never need it.
    from storages.backends.s3 import S3Storage

    from .s3 import S3Quarantine

    if isinstance(storage, S3Storage):
        return S3Quarantine(storage, conf.quarantine_prefix())
    raise QuarantineError(f"no quarantine for {type(storage).__name__}; set MEDIA_CLEANUP_QUARANTINE_DAYS=0")
