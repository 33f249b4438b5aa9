"""What every storage backend of the sweep shares: the types it hands out and the protocols it serves.

A backend serves one kind of Django storage with three objects: a ``Walker`` lists and deletes
the files under ``uploads/``, a ``Quarantine`` keeps what a real sweep removes so that a run
can be taken back, and a ``MarkerStore`` reads and writes the marker that binds the storage to
its database (``binding.py``). The engine and the restore know only these protocols;
``backends.backend_for()`` picks the classes.
"""

import dataclasses
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from ..manifest import ManifestLine, parse_meta

# The marker's name at the storage's root, outside ``uploads/``, where no listing sees it.
MARKER_NAME = ".media-storage.json"
KEPT_LAYOUT_ENTRY = "refused: uploads/ and its direct entries are never removed"
LEADS_OUTSIDE = "refused: the path leads outside uploads/"
NOT_A_PLAIN_NAME = "refused: not a plain name under uploads/"
NOT_A_RUN = "not a run folder (the quarantine holds only folders named by a run id); remove it"
NO_META = 'a run folder without meta.json; remove it, or give it a meta.json {"created": <POSIX time>}'


class StorageUnavailable(Exception):
    """The storage cannot be listed at all: the run cannot go on."""


class UnsupportedStorage(StorageUnavailable):
    """No backend serves the storage's class: the sweep cannot touch it."""


class LocationMissing(Exception):
    """The storage's root (``MEDIA_ROOT`` or the bucket) does not exist."""


class QuarantineError(Exception):
    """The quarantine is misconfigured or cannot be written: the run cannot go on."""


@dataclasses.dataclass(frozen=True)
class QuarantinedRun:
    """A run the quarantine holds: when it was quarantined, and everything its meta.json says."""

    run_id: str
    created: float
    meta: dict

    @classmethod
    def from_meta(cls, run_id, raw, where):
        """Return the run that the bytes of its meta.json (at ``where``) describe; raise ``UnreadableRun``."""
        try:
            meta = parse_meta(raw)
        except ValueError as exc:
            raise bad_meta(where, str(exc)) from None
        return cls(run_id, meta["created"], meta)


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
    def known_size(self):
        """Return the size if known without asking the storage (listed with it, or read), else None."""
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
    """Outcomes of deleting one file (or moving it into the quarantine)."""

    DELETED = "deleted"
    GONE = "gone"  # already gone when its delete came: a finding, not an error
    FAILED = "failed"


class Restored:
    """Outcomes of putting one file back."""

    RESTORED = "restored"
    EXISTS = "exists"  # a file is at the original path again: never overwritten
    MISSING = "missing"  # not in the quarantine (a run killed between manifest and move)
    FAILED = "failed"


class Marker:
    """What a storage's marker says: the database it belongs to, and who wrote it when."""

    def __init__(self, database, label="", claimed_at="", host=""):
        self.database = str(database)
        self.label = label
        self.claimed_at = claimed_at
        self.host = host

    @classmethod
    def parse(cls, raw, where):
        """Return the marker that ``raw`` (bytes) holds; raise ``StorageUnavailable`` saying what is wrong."""
        try:
            value = json.loads(raw.decode("utf-8", "replace"))
            return cls(
                value["database"], value.get("label", ""), value.get("claimed_at", ""), value.get("host", "")
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageUnavailable(
                f"the storage marker {where} is not readable ({exc}); repair it or claim the storage "
                "with `cleanup_media --claim-storage`"
            ) from None

    def dumps(self):
        """Return the marker as the bytes a storage keeps."""
        value = {
            "database": self.database,
            "label": self.label,
            "claimed_at": self.claimed_at,
            "host": self.host,
        }
        return json.dumps(value).encode()

    def describe(self):
        """Return the database and who claimed the storage when, for messages."""
        claimed = f"claimed {self.claimed_at}" if self.claimed_at else ""
        host = f"on {self.host}" if self.host else ""
        details = ", ".join(part for part in (self.label, claimed, host) if part)
        return f"{self.database} ({details})" if details else self.database


Outcome = tuple[StoredFile, str, str]


class Walker(Protocol):
    """List the files under ``uploads/`` of one storage in byte order of their names, and delete them."""

    unreadable_names: int  # names the listing had to leave alone (not valid UTF-8)
    errors: list[str]  # parts of the storage the listing could not read
    concurrency: int  # batches of files it is worth carrying out at once (deletes, quarantine moves)

    def iter_pages(self) -> Iterator[tuple[list[str], list[StoredFile] | None]]:
        """Return the files under ``uploads/`` in byte order of names, in pages ``(names, files)``.

        ``files`` is aligned with ``names``, or None when the listing gives names only; then
        ``stored(name)`` gives the file. The result is an iterator one may ``close()``.
        """

    def stored(self, name: str) -> StoredFile:
        """Return the listed file ``name``; only a walker whose pages come without files needs it."""

    def iter_files(self) -> Iterator[StoredFile]:
        """Return the files under ``uploads/`` one by one, in the order of ``iter_pages()``."""

    def delete(self, files: Iterable[StoredFile]) -> Iterator[Outcome]:
        """Delete each file; yield ``(file, Deletion outcome, detail)`` for each, in batches or one by one."""


class Quarantine(Protocol):
    """Keep what a real sweep removes, run by run, with a manifest that lets a restore take it back."""

    def location(self, run_id: str) -> str:
        """Return where the run's quarantine is, for messages."""

    def begin(self, run_id: str, now: datetime, **meta) -> None:
        """Open the run's quarantine, stamped with the engine's clock and ``meta`` in its meta.json."""

    def record(self, run_id: str, part: int, entries: list[dict]) -> None:
        """Write one manifest part before its batch is carried out."""

    def move_in(self, run_id: str, files: Iterable[StoredFile]) -> Iterator[Outcome]:
        """Move each file into the run's quarantine; yield outcomes as ``Walker.delete`` does."""

    def record_size(self, run_id: str, size: int) -> None:
        """Record, once the run has ended, the bytes it moved in: what ``size()`` returns from then on."""

    def runs(self) -> tuple[dict[str, QuarantinedRun], list[QuarantineProblem]]:
        """Return every run the quarantine holds by id, and each entry that is not a readable run."""

    def run(self, run_id: str) -> QuarantinedRun | None:
        """Return the run, or None when there is none; raise ``UnreadableRun`` when it cannot be read."""

    def entries(self, run_id: str) -> Iterator[ManifestLine]:
        """Yield a ``ManifestLine`` for each line of the run's manifest, part by part."""

    def move_back(
        self, run_id: str, names: list[str], dry_run: bool = False
    ) -> Iterator[tuple[str, str, str]]:
        """Put files back at their names, the recorded size dropped first; yield ``(name, Restored
        outcome, detail)`` for each."""

    def size(self, run_id: str) -> int:
        """Return the bytes of the files the run's quarantine holds: as recorded, else measured one by one."""

    def purge(self, run_id: str) -> int:
        """Delete the run's quarantine for good, its recorded size first and meta.json last; return
        the bytes of files it held."""


class MarkerStore(Protocol):
    """Read and write the marker at a storage's root."""

    setting: str  # the setting that names the storage, for messages

    def describe(self) -> str:
        """Return the storage's name for messages ("MEDIA_ROOT /srv/media")."""

    def read(self) -> Marker | None:
        """Return the marker, or None when there is none; raise ``LocationMissing`` without the storage."""

    def write(self, marker: Marker) -> None:
        """Write the marker, replacing any other."""
