"""The quarantine: where a real sweep moves what it removes, so that a run can be taken back.

Each run that removed something has a folder (or, on object storage, a key prefix) named by
its run id, holding the files under their original paths and a manifest of the rows::

    <run id>/meta.json                 {"run_id": ..., "created": <POSIX time>, ...}
    <run id>/manifest-00001.jsonl      one JSON object per line: a file or a deleted row
    <run id>/uploads/tours/ab12-x.jpg  the file, at its original path

A manifest part is written before the files of its batch move and before its rows go, so a
run killed midway still describes everything it touched. The quarantine is never under
``uploads/``, never public and never listed as uploads. It describes itself: a restore needs
no run history, only the run id.

What the quarantine holds is read with suspicion (``manifest.py``): an entry that is not a
readable run (a corrupt or missing ``meta.json``, a stray file) is reported as a
``QuarantineProblem``, never restored, never purged; a restore moves back only regular files
and links found inside the run's own folder, never through a symlinked folder.

On local files it is a folder outside ``MEDIA_ROOT`` (``MEDIA_CLEANUP_QUARANTINE_ROOT``); on S3
a key prefix outside ``uploads/`` (``MEDIA_CLEANUP_QUARANTINE_PREFIX``), reached by a
server-side copy then a batched delete.
"""

import dataclasses
import errno
import json
import logging
import os
import shutil
import stat
import time

from django.core.files.storage import FileSystemStorage, default_storage

from .. import conf
from ..paths import InsideCheck, in_uploads, is_layout_entry
from .manifest import ManifestLine, is_uuid_text, manifest_lines, parse_meta, run_meta
from .walkers import KEPT_LAYOUT_ENTRY, Deletion, remove_empty_folders

logger = logging.getLogger(__name__)

META = "meta.json"
MANIFEST_PREFIX = "manifest-"
# Folders a quarantine root holds that are no run: fsck's, at the root of an ext filesystem
# (there when the quarantine has a disk of its own).
NOT_RUNS = {"lost+found"}
NOT_A_RUN = "not a run folder (the quarantine holds only folders named by a run id); remove it"
NO_META = 'a run folder without meta.json; remove it, or give it a meta.json {"created": <POSIX time>}'


class QuarantineError(Exception):
    """The quarantine is misconfigured or cannot be written: the run cannot go on."""


@dataclasses.dataclass(frozen=True)
class QuarantinedRun:
    """A run the quarantine holds: when it was quarantined, and everything its meta.json says."""

    run_id: str
    created: float
    meta: dict


@dataclasses.dataclass(frozen=True)
class QuarantineProblem:
    """An entry of the quarantine that is not a readable run: where it is, what is wrong, what to do."""

    path: str
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


class UnreadableRun(QuarantineError):
    """The quarantine holds something under the run's id, but not a run it can read."""

    def __init__(self, problem):
        super().__init__(str(problem))
        self.problem = problem


class MissingMeta(UnreadableRun):
    """The run's folder holds no meta.json (on S3: possibly no such run at all)."""

    def __init__(self, location):
        super().__init__(QuarantineProblem(location, NO_META))


def bad_meta(path, why):
    """Return the ``UnreadableRun`` for a run whose meta.json at ``path`` is ``why``."""
    return UnreadableRun(QuarantineProblem(path, f"{why}; repair it, or remove its run folder"))


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

    def location(self, run_id):
        """Return where the run's quarantine is, for messages."""
        return _shown(self._run_dir(run_id))

    def begin(self, run_id, now, **meta):
        """Open the run's quarantine, stamped with the engine's clock (retention counts from it).

        ``meta`` adds keys to the run's meta.json; ``runs()`` and ``run()`` return them.
        """
        folder = self._run_dir(run_id)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            path = os.path.join(folder, META)
            if not os.path.exists(path):
                _write_json(path, run_meta(run_id, now, meta))
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
        """Return ``({run id: QuarantinedRun}, [QuarantineProblem])``: the runs, and what is not one."""
        found, problems = {}, []
        try:
            with os.scandir(self.root) as entries:
                for entry in entries:
                    if entry.name in NOT_RUNS:
                        continue
                    if not (is_uuid_text(entry.name) and entry.is_dir(follow_symlinks=False)):
                        problems.append(QuarantineProblem(_shown(entry.path), NOT_A_RUN))
                        continue
                    try:
                        found[entry.name] = self._read_run(entry.name)
                    except UnreadableRun as exc:
                        problems.append(exc.problem)
        except FileNotFoundError:
            pass  # nothing quarantined yet
        except OSError as exc:
            raise QuarantineError(f"cannot read the quarantine {self.root}: {exc}") from exc
        return found, problems

    def run(self, run_id):
        """Return the run's ``QuarantinedRun``, or None; raise ``UnreadableRun`` when it cannot be read."""
        folder = self._run_dir(run_id)
        if not os.path.lexists(folder):
            return None
        if os.path.islink(folder) or not os.path.isdir(folder):
            raise UnreadableRun(QuarantineProblem(_shown(folder), NOT_A_RUN))
        return self._read_run(run_id)

    def _read_run(self, run_id):
        path = os.path.join(self._run_dir(run_id), META)
        try:
            with _open_regular(path) as handle:
                raw = handle.read()
        except FileNotFoundError:
            raise MissingMeta(self.location(run_id)) from None
        except OSError as exc:
            raise bad_meta(_shown(path), f"cannot be read ({exc.strerror or exc})") from None
        try:
            meta = parse_meta(raw)
        except ValueError as exc:
            raise bad_meta(_shown(path), str(exc)) from None
        return QuarantinedRun(run_id, meta["created"], meta)

    def entries(self, run_id):
        """Yield a ``ManifestLine`` for each line of the run's manifest, part by part.

        A part that is not a regular file (a symlink is never followed) is one line that says so.
        """
        folder = self._run_dir(run_id)
        for part in sorted(name for name in os.listdir(folder) if name.startswith(MANIFEST_PREFIX)):
            try:
                handle = _open_regular(os.path.join(folder, part))
            except OSError as exc:
                problem = f"manifest part cannot be read ({exc.strerror or exc})"
                yield ManifestLine(_shown(part), problem=problem)
                continue
            with handle:
                yield from manifest_lines(_shown(part), handle)

    def move_back(self, run_id, names, dry_run=False):
        """Put files back at their original paths with a fresh modification time; yield outcomes.

        Only a regular file or a link (moved as a link, never followed) found inside the run's
        own folder comes back: a name reached through a symlinked folder of the quarantine is
        refused. With ``dry_run``, only tell what would happen.
        """
        inside = InsideCheck(self.storage)
        run_dir = self._run_dir(run_id)
        real_folders = {}  # quarantine folder -> no symlink leads to it (one realpath per folder)
        for name in names:
            source = os.path.join(run_dir, name)
            target = os.path.join(self.media_root, name)
            if not (in_uploads(name) and inside(name)):
                yield name, Restored.FAILED, "refused: the path leads outside uploads/"
                continue
            try:
                folder = os.path.dirname(source)
                if folder not in real_folders:
                    # run_dir is a real path (the root is resolved, the run folder checked): any
                    # difference comes from a symlink between it and the file.
                    real_folders[folder] = os.path.realpath(folder) == folder
                if not real_folders[folder]:
                    yield name, Restored.FAILED, "refused: a folder above it in the quarantine is a symlink"
                    continue
                if os.path.lexists(target):
                    yield name, Restored.EXISTS, "a file is there again; left as it is"
                    continue
                try:
                    mode = os.lstat(source).st_mode
                except (FileNotFoundError, NotADirectoryError):
                    yield name, Restored.MISSING, "not in the quarantine"
                    continue
                if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                    yield name, Restored.FAILED, "refused: not a file or a link in the quarantine"
                    continue
                if not dry_run:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    _move(source, target)
                    if not stat.S_ISLNK(mode):
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
        """Delete a run's quarantine for good; return the bytes of files it held.

        meta.json goes last: a purge that fails midway leaves a run that is still listed (and
        purged again by the next sweep), never a folder nobody can read.
        """
        size = self.size(run_id)
        folder = self._run_dir(run_id)
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name == META:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        os.unlink(os.path.join(folder, META))
        os.rmdir(folder)
        return size


def _open_regular(path):
    """Open a regular file for reading in binary, never through a symlink nor blocking on a pipe."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symlink, never followed", path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _shown(path):
    """Return a path fit for a message: bytes that are not UTF-8 shown as escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
