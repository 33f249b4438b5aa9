"""Which database a media storage belongs to, so that a sweep never empties another's storage.

Each database has an identity (``DatabaseIdentity``); each storage (a ``MEDIA_ROOT`` or a
bucket) carries a marker naming the database that uses it, as a backup repository carries its
id. The marker lives at the storage's root, outside ``uploads/``, so no listing sees it::

    MEDIA_ROOT/.media-storage.json         {"database": "<uuid>", "label": ..., "claimed_at": ...}
    s3://bucket/<AWS_LOCATION>/.media-storage.json

The first real sweep that finds no marker writes one, once it has seen that the storage holds
this database's files (or that the database has almost none yet). From then on a sweep or a
restore on a storage marked for another database is refused before it touches anything;
``cleanup_media --claim-storage`` moves the marker on purpose (after a move or a restore from a
backup).
"""

import logging
import os
import socket

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from ..models import CleanupRun, DatabaseIdentity
from .backends import backend_for
from .backends.base import LocationMissing, Marker
from .lock import LockHeld, cleanup_lock

logger = logging.getLogger(__name__)


class StorageRefused(Exception):
    """The storage is not this database's (or not there at all): nothing may be removed from it."""


def database_label(using):
    """Return a short, password-free name of the database, for messages and the marker."""
    connection = connections[using]
    name = str(connection.settings_dict["NAME"])
    return f"{connection.vendor} {os.path.basename(name) if connection.vendor == 'sqlite' else name}"


class Binding:
    """The bond between this database and its storage, checked before a run removes anything."""

    def __init__(self, storage, using):
        self.store = backend_for(storage).marker_store()
        self.using = using
        self.database = DatabaseIdentity.current(using)
        self.marker = None

    def check(self):
        """Refuse a storage that is missing or marked for another database; remember its marker."""
        self.marker = self.read()
        if self.marker is not None and self.marker.database != self.database:
            raise StorageRefused(
                f"{self.store.describe()} belongs to database {self.marker.describe()}, not to this "
                f"database ({self.database}, {database_label(self.using)}): check DATABASE_URL and "
                f"{self.store.setting}; if this storage now really belongs to this "
                "database (moved, or restored from a backup), run `cleanup_media --claim-storage`. "
                "Nothing was removed"
            )

    def read(self):
        """Return the storage's marker, or None; refuse a storage that does not exist."""
        try:
            return self.store.read()
        except LocationMissing:
            raise StorageRefused(
                f"{self.store.describe()} does not exist: is {self.store.setting} right? "
                "(If it is, create it: this looks like a new installation.) Nothing was removed"
            ) from None

    @property
    def marked(self):
        """Return True once the storage carries a marker."""
        return self.marker is not None

    def check_holds_files(self, referenced, present, floor):
        """Refuse an unmarked storage that holds none of the ``referenced`` files (at least ``floor``)."""
        if self.marked or present or referenced < floor or not referenced:
            return
        raise StorageRefused(
            f"{self.store.describe()} holds none of the {referenced} files this database references: "
            f"is {self.store.setting} right? If it is, run `cleanup_media --claim-storage`. "
            "Nothing was removed"
        )

    def claim(self):
        """Mark the storage as this database's; return the marker it replaced (or None)."""
        previous = self.marker
        self.marker = Marker(
            self.database,
            label=database_label(self.using),
            claimed_at=timezone.now().isoformat(timespec="seconds"),
            host=socket.gethostname(),
        )
        self.store.write(self.marker)
        logger.info("Marked %s as the storage of database %s", self.store.describe(), self.database)
        return previous


def own_runs(runs, database, using):
    """Return the quarantined runs (``{run id: QuarantinedRun}``) that belong to ``database``.

    A run names the database that quarantined it in its meta.json. A run quarantined before
    that key existed belongs to the database whose history knows its id.
    """
    unnamed = [run_id for run_id, run in runs.items() if "database" not in run.meta]
    known = {
        str(pk) for pk in CleanupRun.objects.using(using).filter(pk__in=unnamed).values_list("pk", flat=True)
    }
    return {
        run_id: run
        for run_id, run in runs.items()
        if run.meta.get("database") == database or ("database" not in run.meta and run_id in known)
    }


def claim_storage(*, using=DEFAULT_DB_ALIAS, storage=None):
    """Bind the media storage to this database on purpose; return a sentence saying what changed.

    Raise ``StorageRefused`` when the storage does not exist, ``StorageUnavailable`` when its
    marker cannot be read or written, and ``LockHeld`` when a sweep holds the lock.
    """
    with cleanup_lock(using) as lock:
        if not lock:
            raise LockHeld("a cleanup run holds the lock; try again when it has finished")
        binding = Binding(storage, using)
        binding.marker = binding.read()
        previous = binding.claim()
    storage, database = binding.store.describe(), binding.database
    if previous is None:
        return f"{storage} is now marked as the storage of this database ({database})."
    if previous.database == database:
        return f"{storage} was already this database's ({database}); its marker is renewed."
    return f"{storage} now belongs to this database ({database}), no longer to {previous.describe()}."
