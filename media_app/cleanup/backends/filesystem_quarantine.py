"""The quarantine of local files: a folder outside ``MEDIA_ROOT`` (``MEDIA_CLEANUP_QUARANTINE_ROOT``).

A file moves in by a rename (a copy then a delete when the quarantine lies on another
filesystem). What the folder holds is read with suspicion: an entry that is not a readable run
(a corrupt or missing ``meta.json``, a stray file) is reported as a ``QuarantineProblem``, never
restored, never purged; a restore moves back only regular files and links found inside the
run's own folder, never through a symlinked folder.
"""

import errno
import logging
import os
import shutil
import stat

from ...paths import InsideCheck, in_uploads, is_layout_entry
from ..manifest import (
    MANIFEST_PREFIX,
    META,
    SIZE_RECORD,
    SIZE_RECORD_LIMIT,
    ManifestLine,
    encode_meta,
    encode_part,
    encode_size,
    is_record_name,
    is_uuid_text,
    manifest_lines,
    parse_size,
    part_name,
)
from .base import (
    KEPT_LAYOUT_ENTRY,
    LEADS_OUTSIDE,
    NOT_A_RUN,
    Deletion,
    MissingMeta,
    QuarantinedRun,
    QuarantineError,
    QuarantineProblem,
    Restored,
    UnreadableRun,
    bad_meta,
)
from .filesystem import remove_empty_folders, write_atomically

logger = logging.getLogger(__name__)

# Folders a quarantine root holds that are no run: fsck's, at the root of an ext filesystem
# (there when the quarantine has a disk of its own).
NOT_RUNS = {"lost+found"}


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
                write_atomically(path, encode_meta(run_id, now, meta))
        except OSError as exc:
            raise QuarantineError(f"cannot write the quarantine {folder}: {exc}") from exc

    def record(self, run_id, part, entries):
        """Write one manifest part (a batch's files or rows) before the batch is carried out."""
        path = os.path.join(self._run_dir(run_id), part_name(part))
        try:
            with open(path, "wb") as handle:
                handle.write(encode_part(entries))
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
                yield stored, Deletion.FAILED, LEADS_OUTSIDE
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

    def record_size(self, run_id, size):
        """Record the bytes the run moved in, once it has ended: ``size()`` reads them from then on."""
        path = os.path.join(self._run_dir(run_id), SIZE_RECORD)
        try:
            write_atomically(path, encode_size(size))
        except OSError as exc:
            raise QuarantineError(f"cannot write {_shown(path)}: {exc}") from exc

    def _recorded_size(self, run_id):
        """Return the bytes the run's size.json records, or None (logged unless it is simply absent)."""
        path = os.path.join(self._run_dir(run_id), SIZE_RECORD)
        try:
            with _open_regular(path) as handle:
                raw = handle.read(SIZE_RECORD_LIMIT)
        except FileNotFoundError:
            return None
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc})"
        else:
            try:
                return parse_size(raw)
            except ValueError as exc:
                problem = str(exc)
        logger.warning("%s %s: the run's files are measured instead", _shown(path), problem)
        return None

    def _forget_size(self, run_id):
        """Remove the run's size.json before its files change; raise ``QuarantineError`` if it stays."""
        path = os.path.join(self._run_dir(run_id), SIZE_RECORD)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise QuarantineError(f"cannot remove {_shown(path)}: {exc}") from exc

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
        return QuarantinedRun.from_meta(run_id, raw, _shown(path))

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
        if not dry_run:
            self._forget_size(run_id)
        inside = InsideCheck(self.storage)
        run_dir = self._run_dir(run_id)
        real_folders = {}  # quarantine folder -> no symlink leads to it (one realpath per folder)
        for name in names:
            source = os.path.join(run_dir, name)
            target = os.path.join(self.media_root, name)
            if not (in_uploads(name) and inside(name)):
                yield name, Restored.FAILED, LEADS_OUTSIDE
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
        """Return the bytes of the files a run's quarantine holds: as its size.json records, else measured."""
        recorded = self._recorded_size(run_id)
        if recorded is not None:
            return recorded
        folder = self._run_dir(run_id)
        return sum(
            os.lstat(os.path.join(path, name)).st_size
            for path, _, names in os.walk(folder)
            for name in names
            if not (path == folder and is_record_name(name))
        )

    def purge(self, run_id):
        """Delete a run's quarantine for good; return the bytes of files it held.

        meta.json goes last: a purge that fails midway leaves a run that is still listed (and
        purged again by the next sweep), never a folder nobody can read.
        """
        size = self.size(run_id)
        self._forget_size(run_id)  # what a purge that fails midway leaves is measured again
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
