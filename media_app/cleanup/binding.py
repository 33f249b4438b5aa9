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

import json
import logging
import os
import socket
import time

from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from ..models import CleanupRun, DatabaseIdentity
from .lock import LockHeld, cleanup_lock
from .walkers import StorageUnavailable

logger = logging.getLogger(__name__)

MARKER_NAME = ".media-storage.json"


class StorageRefused(Exception):
    """The storage is not this database's (or not there at all): nothing may be removed from it."""


class LocationMissing(Exception):
    """The storage's root (``MEDIA_ROOT`` or the bucket) does not exist."""


class Marker:
    """What a storage's marker says: the database it belongs to, and who wrote it when."""

    def __init__(self, database, label="", claimed_at="", host=""):
        self.database = str(database)
        self.label = label
        self.claimed_at = claimed_at
        self.host = host

    @classmethod
    def parse(cls, text, where):
        try:
            value = json.loads(text)
            return cls(
                value["database"], value.get("label", ""), value.get("claimed_at", ""), value.get("host", "")
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageUnavailable(
                f"the storage marker {where} is not readable ({exc}); repair it or claim the storage "
                "with `cleanup_media --claim-storage`"
            ) from None

    def dumps(self):
        return json.dumps(
            {"database": self.database, "label": self.label, "claimed_at": self.claimed_at, "host": self.host}
        )

    def describe(self):
        claimed = f"claimed {self.claimed_at}" if self.claimed_at else ""
        host = f"on {self.host}" if self.host else ""
        details = ", ".join(part for part in (self.label, claimed, host) if part)
        return f"{self.database} ({details})" if details else self.database


class FilesystemMarkerStore:
    """The marker of a local ``MEDIA_ROOT``."""

    def __init__(self, storage):
        self.root = os.path.abspath(storage.location)
        self.path = os.path.join(self.root, MARKER_NAME)

    setting = "MEDIA_ROOT"

    def describe(self):
        return f"MEDIA_ROOT {self.root}"

    def read(self):
        """Return the marker, or None when there is none; raise ``LocationMissing`` without MEDIA_ROOT."""
        if not os.path.isdir(self.root):
            raise LocationMissing
        try:
            with open(self.path, encoding="utf-8") as handle:
                return Marker.parse(handle.read(), self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read the storage marker {self.path}: {exc}") from exc

    def write(self, marker):
        temporary = f"{self.path}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(marker.dumps())
            os.replace(temporary, self.path)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write the storage marker {self.path}: {exc}") from exc


class S3MarkerStore:
    """The marker of a bucket (under ``AWS_LOCATION``, when set)."""

    def __init__(self, storage):
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        location = storage.location.strip("/")
        self.key = f"{location}/{MARKER_NAME}" if location else MARKER_NAME

    setting = "AWS_STORAGE_BUCKET_NAME"

    def describe(self):
        return f"bucket s3://{self.bucket}"

    def read(self):
        """Return the marker, or None when there is none; raise ``LocationMissing`` without the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "NoSuchBucket":
                raise LocationMissing from None
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageUnavailable(f"cannot read s3://{self.bucket}/{self.key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot read s3://{self.bucket}/{self.key}: {exc}") from exc
        return Marker.parse(body.decode("utf-8", "replace"), f"s3://{self.bucket}/{self.key}")

    def write(self, marker):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=marker.dumps().encode())
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"cannot write s3://{self.bucket}/{self.key}: {exc}") from exc


def marker_store_for(storage):
    """Return where ``storage`` keeps its marker; raise ``StorageUnavailable`` for an unknown storage."""
    if isinstance(storage, FileSystemStorage):
        return FilesystemMarkerStore(storage)
    # Imported only here: boto3 is slow to import, and local files never need it.
    from storages.backends.s3 import S3Storage

    if isinstance(storage, S3Storage):
        return S3MarkerStore(storage)
    raise StorageUnavailable(f"no storage marker for {type(storage).__name__}")


def database_label(using):
    """Return a short, password-free name of the database, for messages and the marker."""
    connection = connections[using]
    name = str(connection.settings_dict["NAME"])
    return f"{connection.vendor} {os.path.basename(name) if connection.vendor == 'sqlite' else name}"


class Binding:
    """The bond between this database and its storage, checked before a run removes anything."""

    def __init__(self, storage, using):
        self.store = marker_store_for(storage)
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
        try:
            return self.store.read()
        except LocationMissing:
            raise StorageRefused(
                f"{self.store.describe()} does not exist: is {self.store.setting} right? "
                "(If it is, create it: this looks like a new installation.) Nothing was removed"
            ) from None

    @property
    def marked(self):
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
        binding = Binding(storage or default_storage, using)
        binding.marker = binding.read()
        previous = binding.claim()
    storage, database = binding.store.describe(), binding.database
    if previous is None:
        return f"{storage} is now marked as the storage of this database ({database})."
    if previous.database == database:
        return f"{storage} was already this database's ({database}); its marker is renewed."
    return f"{storage} now belongs to this database ({database}), no longer to {previous.describe()}."
