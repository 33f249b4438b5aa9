"""Take a sweep back: put a quarantined run's files back and re-create its rows.

``restore_run()`` is the entry point of ``manage.py restore_media`` and of the admin's
"restore this run". It takes the sweep's lock, never overwrites a file that exists again,
and re-creates only the rows whose owner exists again (after the owner came back from a
backup, say). Restored files get a fresh modification time, so that the sweep's grace
period protects a file that comes back without a row. A manifest line that cannot be
restored (malformed, or refused by the quarantine) is skipped with its reason; the rest of
the run comes back.
"""

import dataclasses
import itertools
import logging
import uuid
from contextlib import contextmanager
from datetime import datetime

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, DatabaseError
from django.db.models import Case, DateTimeField, UUIDField, Value, When

from ..models import CleanupRun, DatabaseIdentity, Media
from .backends import backend_for
from .backends.base import QuarantineError, Restored, StorageUnavailable, UnreadableRun
from .batches import batched
from .binding import Binding, StorageRefused, own_runs
from .exit_codes import FAILURE, SUCCESS, TRY_AGAIN_LATER, USAGE_ERROR
from .lock import cleanup_lock
from .result import one_line

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
MAX_SKIPPED_ITEMS = 100


class RestoreStatus:
    OK = "ok"
    PARTIAL = "partial"  # something was skipped or failed
    UNKNOWN = "unknown"  # no such run in the quarantine or the history
    PURGED = "purged"  # the run is in the history, but its quarantine was purged
    LOCKED = "locked"
    FAILED = "failed"
    REFUSED = "refused"  # the storage or the run belongs to another database


EXIT_CODES = {
    RestoreStatus.OK: SUCCESS,
    RestoreStatus.PARTIAL: FAILURE,  # not everything came back: a person has to look
    RestoreStatus.FAILED: FAILURE,
    RestoreStatus.REFUSED: FAILURE,
    RestoreStatus.UNKNOWN: USAGE_ERROR,
    RestoreStatus.PURGED: USAGE_ERROR,
    RestoreStatus.LOCKED: TRY_AGAIN_LATER,
}


@dataclasses.dataclass
class RestoreResult:
    """What a restore put back, and what it skipped and why."""

    run_id: str
    dry_run: bool = False
    status: str = RestoreStatus.OK
    restored_files: int = 0
    restored_records: int = 0
    skipped: int = 0
    skipped_items: list = dataclasses.field(default_factory=list)
    message: str = ""

    @property
    def exit_code(self):
        return EXIT_CODES[self.status]

    def skip(self, kind, name, reason):
        self.skipped += 1
        if len(self.skipped_items) < MAX_SKIPPED_ITEMS:
            self.skipped_items.append({"kind": kind, "name": name, "reason": reason})
        logger.warning("Restore skipped %s %r: %s", kind, name, reason)

    def as_dict(self):
        """Return the JSON object that ``restore_media --json`` prints."""
        return dataclasses.asdict(self)


def parse_run_id(text):
    """Return a run id in its canonical form; raise ``ValueError`` with a one-line message if it is none."""
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise ValueError(
            f"{str(text)[:100]!r} is not a run id: give the run_id that cleanup_media --json printed (a UUID)"
        ) from None


def quarantined_runs(storage=None, using=DEFAULT_DB_ALIAS):
    """Return ``(runs, problems)``: this database's restorable runs, newest first, and what the
    quarantine cannot read.

    Each run is ``{"run_id", "created", "files", "records", "bytes"}``, counting the manifest's
    entries that a restore would try; each problem is a ``QuarantineProblem``. Runs another
    database quarantined (in a quarantine shared by mistake) are not listed.
    """
    quarantine = backend_for(storage).quarantine()
    found, problems = quarantine.runs()
    found = own_runs(found, DatabaseIdentity.current(using), using)
    runs = []
    for run in sorted(found.values(), key=lambda run: run.created, reverse=True):
        counts = {"file": 0, "record": 0}
        for line in quarantine.entries(run.run_id):
            if line.entry is not None:
                counts[line.entry["kind"]] += 1
        runs.append(
            {
                "run_id": run.run_id,
                "created": datetime.fromtimestamp(run.created).astimezone().isoformat(timespec="seconds"),
                "files": counts["file"],
                "records": counts["record"],
                "bytes": quarantine.size(run.run_id),
            }
        )
    return runs, problems


def restore_run(run_id, *, dry_run=False, using=DEFAULT_DB_ALIAS, storage=None):
    """Put a quarantined run's files back and re-create its rows whose owner exists again.

    Return a ``RestoreResult``: ``ok`` when everything came back, ``partial`` when something
    was skipped (a file exists again, an owner is still gone, a row exists, a manifest line is
    malformed) or failed, ``unknown`` (also for a ``run_id`` that is no run id) or ``purged``
    when there is nothing to restore, ``failed`` when the run's quarantine cannot be read,
    ``locked`` when a sweep runs. Never raise for expected trouble.
    """
    try:
        run_id = parse_run_id(run_id)
    except ValueError as exc:
        logger.warning("Restore not started: %s", exc)
        return RestoreResult(str(run_id), dry_run=dry_run, status=RestoreStatus.UNKNOWN, message=str(exc))
    result = RestoreResult(run_id=run_id, dry_run=dry_run)
    storage = storage or default_storage
    try:
        with cleanup_lock(using) as acquired:
            if not acquired:
                result.status = RestoreStatus.LOCKED
                result.message = "a cleanup run holds the lock; nothing was done"
                return result
            restore_locked(result, storage, using=using, dry_run=dry_run)
    except (DatabaseError, OSError) as exc:
        # The lock needs the database (or, for SQLite, the lock file beside it).
        result.status = RestoreStatus.FAILED
        result.message = f"cannot reach the database: {type(exc).__name__}: {one_line(exc)}"
        logger.error("Restore of run %s failed: %s", run_id, result.message)
        return result
    if result.status == RestoreStatus.OK and result.skipped:
        result.status = RestoreStatus.PARTIAL
    logger.info(
        "Restore of run %s %s: %d files, %d rows, %d skipped",
        run_id,
        result.status,
        result.restored_files,
        result.restored_records,
        result.skipped,
    )
    return result


def restore_locked(result, storage, *, using, dry_run):
    """Restore ``result.run_id`` under the lock, recording the outcome in ``result``."""
    with failures_recorded(result):
        binding = Binding(storage, using)
        binding.check()
        quarantine = backend_for(storage).quarantine()
        if find_run(result, quarantine, binding.database, using):
            Restore(result, quarantine, storage, using=using, dry_run=dry_run).run()


def preview_run(run_id, *, using=DEFAULT_DB_ALIAS, storage=None):
    """Return what a restore of ``run_id`` would try, read from the run's manifest alone.

    Nothing is locked, and the storage is not asked whether each file is free or each owner is
    back: the restore itself checks every item. ``restored_files`` and ``restored_records``
    count the manifest's entries; a malformed line is a skipped item, as in a restore.
    """
    try:
        run_id = parse_run_id(run_id)
    except ValueError as exc:
        return RestoreResult(str(run_id), dry_run=True, status=RestoreStatus.UNKNOWN, message=str(exc))
    result = RestoreResult(run_id=run_id, dry_run=True)
    with failures_recorded(result):
        quarantine = backend_for(storage).quarantine()
        if find_run(result, quarantine, DatabaseIdentity.current(using), using):
            for line in quarantine.entries(run_id):
                if line.entry is None:
                    result.skip("manifest", line.where, line.problem)
                elif line.entry["kind"] == "file":
                    result.restored_files += 1
                else:
                    result.restored_records += 1
    if result.status == RestoreStatus.OK and result.skipped:
        result.status = RestoreStatus.PARTIAL
    return result


def find_run(result, quarantine, database, using):
    """Return this database's quarantined run ``result.run_id``, or None, saying why in ``result``."""
    run_id = result.run_id
    run = quarantine.run(run_id)
    if run is None:
        known = CleanupRun.objects.using(using).filter(pk=run_id).exists()
        result.status = RestoreStatus.PURGED if known else RestoreStatus.UNKNOWN
        result.message = (
            f"run {run_id} is in the history, but its quarantine was purged: nothing to restore"
            if known
            else f"no run {run_id} in the quarantine or the history"
        )
        return None
    if not own_runs({run_id: run}, database, using):
        raise StorageRefused(
            f"run {run_id} was quarantined by database {run.meta.get('database', '(unknown)')}, "
            f"not by this database ({database}): restore it with that database's "
            "settings; check DATABASE_URL and the quarantine's settings. Nothing was restored"
        )
    return run


@contextmanager
def failures_recorded(result):
    """Record the trouble a restore (or its preview) can meet in ``result``, in one line each."""
    run_id = result.run_id
    try:
        yield
    except StorageRefused as exc:
        result.status = RestoreStatus.REFUSED
        result.message = f"refused: {exc}."
        logger.error("Restore of run %s %s", run_id, result.message)
    except UnreadableRun as exc:
        result.status = RestoreStatus.FAILED
        result.message = f"the quarantine of run {run_id} cannot be read: {exc}"
        logger.error("Restore of run %s failed: %s", run_id, result.message)
    except (DatabaseError, QuarantineError, StorageUnavailable, OSError) as exc:
        result.status = RestoreStatus.FAILED
        result.message = f"the restore could not go on: {type(exc).__name__}: {one_line(exc)}"
        logger.error("Restore of run %s failed: %s", run_id, result.message)


class Restore:
    """One restore: files first (a row never points at a file still in quarantine), then rows."""

    def __init__(self, result, quarantine, storage, *, using, dry_run):
        self.result = result
        self.quarantine = quarantine
        self.storage = storage
        self.at_their_path = set()  # files put back (or that a dry run would), or already there
        self.record_ids = set()  # rows met so far: a forged manifest may list one twice
        self.using = using
        self.dry_run = dry_run

    def run(self):
        files = (entry["name"] for entry in self.entries("file", report=True))
        for batch in batched(files, BATCH_SIZE):
            self.restore_files(batch)
        for batch in batched(self.entries("record"), BATCH_SIZE):
            self.restore_records(batch)

    def entries(self, kind, report=False):
        """Yield the run's entries of ``kind``; with ``report``, skip each malformed line, saying why."""
        for line in self.quarantine.entries(self.result.run_id):
            if line.entry is None:
                if report:
                    self.result.skip("manifest", line.where, line.problem)
            elif line.entry["kind"] == kind:
                yield line.entry

    def restore_files(self, names):
        for name, outcome, detail in self.quarantine.move_back(
            self.result.run_id, names, dry_run=self.dry_run
        ):
            if outcome == Restored.RESTORED:
                self.result.restored_files += 1
                self.at_their_path.add(name)
                logger.info("Restored %r", name)
            else:
                if outcome == Restored.EXISTS:
                    self.at_their_path.add(name)
                self.result.skip("file", name, detail)

    def restore_records(self, entries):
        media = Media.objects.using(self.using)
        existing = {
            str(pk) for pk in media.filter(pk__in=[e["id"] for e in entries]).values_list("pk", flat=True)
        }
        owners = self.existing_owners(entries)
        rows = []
        for entry in entries:
            if entry["id"] in self.record_ids:
                self.result.skip("record", entry["file"], "the manifest lists this row twice")
                continue
            self.record_ids.add(entry["id"])
            if entry["id"] in existing:
                self.result.skip("record", entry["file"], "a media row with this id exists")
            elif (tuple(entry["content_type"]), entry["object_id"]) not in owners:
                owner = ".".join(entry["content_type"])
                self.result.skip(
                    "record", entry["file"], f"its owner ({owner} {entry['object_id']}) is still gone"
                )
            elif not self.file_is_there(entry["file"]):
                # Kept by the sweep for a row that shared it, the file went with that row since
                # (or with the row a first restore brought back): a row must not point at nothing.
                self.result.skip(
                    "record", entry["file"], "its file is gone: neither at its path nor in the quarantine"
                )
            else:
                rows.append(entry)
        if rows and not self.dry_run:
            self.create_rows(rows)
        self.result.restored_records += len(rows)

    def file_is_there(self, name):
        """Return True when the row's file is stored at its path (after the files came back).

        The storage is asked only about files the run did not quarantine (kept for a row that
        shared them): the others are known from the files' outcomes, without a request each.
        """
        if name in self.at_their_path:
            return True
        try:
            return bool(name) and self.storage.exists(name)
        except SuspiciousFileOperation:  # a name that leads outside the storage: never there
            return False
        except Exception as exc:  # the storage could not answer (a bucket out of reach): stop
            raise StorageUnavailable(
                f"cannot tell whether {name!r} is stored: {type(exc).__name__}: {exc}"
            ) from exc

    def existing_owners(self, entries):
        """Return ``{((app_label, model), object id)}`` of the owners that exist now."""
        found = set()
        by_type = itertools.groupby(
            sorted(entries, key=lambda e: e["content_type"]), lambda e: e["content_type"]
        )
        for content_type, group in by_type:
            try:
                model = apps.get_model(*content_type)
            except LookupError:
                continue  # the owner type itself is gone
            if not isinstance(model._meta.pk, UUIDField):
                continue  # a model no media row can belong to (its key is no UUID)
            ids = [entry["object_id"] for entry in group]
            for pk in model._base_manager.using(self.using).filter(pk__in=ids).values_list("pk", flat=True):
                found.add((tuple(content_type), str(pk)))
        return found

    def create_rows(self, entries):
        types = {}
        rows = []
        for entry in entries:
            key = tuple(entry["content_type"])
            if key not in types:
                types[key] = ContentType.objects.db_manager(self.using).get_by_natural_key(*key)
            rows.append(
                Media(
                    id=entry["id"],
                    content_type=types[key],
                    object_id=entry["object_id"],
                    file=entry["file"],
                    original_name=entry["original_name"],
                    size=entry["size"],
                    mime_type=entry["mime_type"],
                    caption=entry["caption"],
                )
            )
        media = Media.objects.using(self.using)
        media.bulk_create(rows)
        # bulk_create stamps created_at with now (auto_now_add): put the original dates back.
        media.filter(pk__in=[row.pk for row in rows]).update(
            created_at=Case(
                *(
                    When(pk=entry["id"], then=Value(datetime.fromisoformat(entry["created_at"])))
                    for entry in entries
                ),
                output_field=DateTimeField(),
            )
        )
