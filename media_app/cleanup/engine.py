"""The cleanup sweep: find what drifted between media rows and storage, and repair it safely.

``run_cleanup()`` is the one entry point; the command, the cron job and the admin call it.
A run has three phases:

1. **Collect**, in one pass over three streams sorted by name in byte order and merged:
   every reference of every FileField (rows ordered by file name), the orphaned media rows
   (owner gone: one anti-join per owner type), and the files under ``uploads/`` (the walker).
   Everything is counted; what would go is spilled to temporary files outside MEDIA_ROOT.
2. **Cap**: on those complete counts, before the first delete, refuse a run that would delete
   too large a share of the files or rows (the guard against an empty or wrong database).
3. **Remove**, in batches: orphaned rows (then their files, after the commit), then orphaned
   files. Each batch is checked again against the database just before it goes.
"""

import heapq
import logging
import os
import posixpath
import socket
import tempfile
import time
import uuid
from contextlib import closing, contextmanager
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Collate
from django.db.transaction import TransactionManagementError
from django.template.defaultfilters import pluralize
from django.utils import timezone

from .. import conf, references, signals
from ..durations import parse_duration
from ..models import CleanupRun, Media
from ..paths import UPLOADS_PREFIX, in_uploads, is_layout_entry, is_safe_name
from .backends import backend_for
from .backends.base import Deletion, QuarantineError, StorageUnavailable, StoredFile
from .binding import Binding, StorageRefused, own_runs
from .lock import LockLost, cleanup_lock
from .result import CleanupResult, Status, one_line
from .spill import Spill

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
# Rows fetched per round trip of the streams the merge reads (a page of names is ~0.5 MiB).
STREAM_CHUNK = 5_000
# Key in ``CleanupRun.options`` of a run limited to a selection (how many rows): not a sweep.
SELECTION_OPTION = "media_ids"
PROGRESS_INTERVAL = 2.0  # seconds between progress reports and history updates
# Collations under which the database orders text as Python orders str (code points, which
# for UTF-8 is byte order). The merge depends on it and checks it as it goes.
BYTE_ORDER_COLLATIONS = {"postgresql": "C", "sqlite": "BINARY"}


class OutOfOrder(Exception):
    """A stream that must be sorted by name was not: the merge cannot be trusted."""


def run_cleanup(
    *,
    dry_run=False,
    min_age=None,
    force=False,
    time_limit=None,
    rate=None,
    trigger=CleanupRun.Trigger.CODE,
    now=None,
    using=DEFAULT_DB_ALIAS,
    storage=None,
    walker=None,
    media_ids=None,
    purge_quarantine=False,
    run_id=None,
    on_item=None,
    on_progress=None,
):
    """Remove media rows whose owner is gone and files under ``uploads/`` that nothing references.

    - ``dry_run``: count and report exactly as a real run would (cap included); remove nothing.
    - ``min_age``: grace period (timedelta or duration text); younger files are never removed as
      orphans. Default: ``MEDIA_CLEANUP_MIN_AGE``.
    - ``force``: lift the safety cap (``MEDIA_CLEANUP_MAX_DELETE_RATIO``/``_CAP_MIN_ITEMS``).
    - ``time_limit``: stop deleting once the run has taken this long (status ``partial``).
    - ``rate``: delete at most this many items per second.
    - ``now``: the clock used for the grace period and history retention (tests move it).
    - ``walker``: lists and deletes stored files; by default one for ``storage``.
    - ``media_ids``: limit the run to these media rows (the admin's selection): only the
      orphaned rows among them go, with their files; storage is not listed and, the
      selection being a person's explicit choice, the safety cap does not apply.
    - ``purge_quarantine``: purge every quarantined run now, not only those past retention.
    - ``on_item(kind, name)`` and ``on_progress(result)``: optional callbacks for a face.

    With ``MEDIA_CLEANUP_QUARANTINE_DAYS`` > 0, a real run moves what it removes into the
    quarantine (``backends/``) instead of deleting it, and purges quarantined runs older
    than that; ``restore.restore_run()`` takes a run back.

    Only one run holds the lock at a time; another ends ``locked`` at once. Every run is
    recorded in ``CleanupRun``. Return a ``CleanupResult``; never raise for expected trouble.
    It must run in autocommit mode: inside a caller's transaction, files would go before the
    deletion of their rows commits, so that is refused with ``TransactionManagementError``.
    """
    if connections[using].in_atomic_block:
        raise TransactionManagementError(
            "run_cleanup() must not run inside a transaction: files would be deleted before "
            "the deletion of their rows commits"
        )
    now = now or timezone.now()
    min_age = conf.min_age() if min_age is None else parse_duration(min_age)
    time_limit = None if time_limit is None else parse_duration(time_limit)
    result = CleanupResult(run_id=str(run_id or uuid.uuid4()), dry_run=dry_run)
    options = {
        "dry_run": dry_run,
        "min_age": min_age.total_seconds(),
        "force": force,
        "time_limit": None if time_limit is None else time_limit.total_seconds(),
        "rate": rate,
        "purge_quarantine": purge_quarantine,
    }
    if media_ids is not None:
        media_ids = [str(pk) for pk in media_ids]
        options[SELECTION_OPTION] = len(media_ids)
    history = RunHistory(result, using=using, trigger=trigger, options=options, now=now)
    started = time.monotonic()
    storage = storage or default_storage
    try:
        with cleanup_lock(using) as lock:
            if not lock:
                result.conditions.add(Status.LOCKED)
                result.message = "another cleanup run holds the lock; nothing was done"
                logger.warning("Cleanup not started: %s", result.message)
                history.record_locked()
                return result
            history.start()
            sweep = Sweep(
                result,
                history=history,
                dry_run=dry_run,
                min_age=min_age,
                force=force,
                time_limit=time_limit,
                rate=rate,
                now=now,
                using=using,
                storage=storage,
                walker=walker,
                media_ids=media_ids,
                purge_quarantine=purge_quarantine,
                lock=lock,
                on_item=on_item,
                on_progress=on_progress,
            )
            try:
                sweep.run()
            except StorageRefused as exc:
                result.conditions.add(Status.REFUSED)
                result.message = f"refused: {exc}."
                logger.error("Cleanup %s", result.message)
            except (DatabaseError, StorageUnavailable, OutOfOrder, QuarantineError, LockLost) as exc:
                result.conditions.add(Status.FAILED)
                result.message = f"the run could not go on: {type(exc).__name__}: {one_line(exc)}".strip()
                logger.error("Cleanup failed: %s", result.message)
            except Exception as exc:
                result.conditions.add(Status.FAILED)
                result.message = f"unexpected error: {type(exc).__name__}: {exc}"
                logger.exception("Cleanup failed with an unexpected error")
            finally:
                result.duration_seconds = time.monotonic() - started
                history.finish()
    except (DatabaseError, OSError) as exc:
        # The lock or the history's first row could not be had: the database (or, for SQLite,
        # the lock file beside it) is out of reach. Nothing was started.
        result.conditions.add(Status.FAILED)
        what = "the database" if isinstance(exc, DatabaseError) else "the lock"
        result.message = f"cannot reach {what}: {type(exc).__name__}: {one_line(exc)}"
        result.duration_seconds = time.monotonic() - started
        logger.error("Cleanup failed: %s", result.message)
        return result
    logger.info("Cleanup %s", summary(result))
    return result


def count(number, noun):
    """Return ``number`` with ``noun`` in the singular or the plural: "1 file", "2 files"."""
    return f"{number} {noun}{pluralize(number)}"


def summary(result):
    """Return a one-paragraph account of a run for logs, the terminal and the admin.

    It reads a ``CleanupResult`` or a ``CleanupRun`` row (the same names). A dry run never
    mentions a restore: it quarantined nothing.
    """
    quarantined, freed = count(result.quarantined_bytes, "byte"), count(result.bytes_freed, "byte")
    if result.dry_run:
        verb, purged = "would remove", "would purge"
        where = (
            f"would move {quarantined} to the quarantine"
            if result.quarantined_bytes
            else f"would free {freed}"
        )
    elif result.quarantined_bytes:
        verb, purged = "removed", "purged"
        where = f"{quarantined} to the quarantine, restorable with restore_media {result.run_id}"
    else:
        verb, purged, where = "removed", "purged", f"{freed} freed"
    found = ", ".join(
        count(getattr(result, figure), noun)
        for figure, noun in [
            ("orphaned_records", "orphaned row"),
            ("orphaned_files", "orphaned file"),
            ("missing_files", "missing file"),
        ]
    )
    text = (
        f"{result.status}{' (dry run)' if result.dry_run else ''}: "
        f"checked {count(result.records_checked, 'row')} and {count(result.files_checked, 'file')}; "
        f"found {found}; {verb} {count(result.deleted_records, 'row')} and "
        f"{count(result.deleted_files, 'file')} ({where}); {count(result.error_count, 'error')}"
    )
    if result.purged_runs:
        runs, size = count(result.purged_runs, "quarantined run"), count(result.purged_bytes, "byte")
        text += f"; {purged} {runs} ({size})"
    return f"{text}. {result.message}" if result.message else text


class RunHistory:
    """Write the run's ``CleanupRun`` row: at the start, with progress, and at the end."""

    def __init__(self, result, *, using, trigger, options, now):
        self.result = result
        self.using = using
        self.now = now
        self.fields = {
            "id": result.run_id,
            "trigger": trigger,
            "dry_run": result.dry_run,
            "options": options,
            "started_at": timezone.now(),
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
        }

    def _runs(self):
        return CleanupRun.objects.using(self.using)

    def record_locked(self):
        self._runs().create(
            **self.fields, status=Status.LOCKED, finished_at=timezone.now(), message=self.result.message
        )

    def start(self):
        # Holding the lock, any other "running" row belongs to a run that died midway.
        interrupted = (
            self._runs()
            .filter(status=Status.RUNNING)
            .update(
                status=Status.INTERRUPTED,
                message="stopped before it finished (killed, or its host went away)",
            )
        )
        if interrupted:
            logger.warning("Marked %d earlier run(s) as interrupted", interrupted)
        self._runs().create(**self.fields, status=Status.RUNNING)

    def progress(self):
        self._runs().filter(pk=self.result.run_id).update(**self.result.figures())

    def finish(self):
        values = {
            **self.result.figures(),
            "status": self.result.status,
            "finished_at": timezone.now(),
            "duration_seconds": self.result.duration_seconds,
            "message": self.result.message,
            "errors": self.result.errors,
            "sample": self.result.sample,
        }
        for attempt in (1, 2):
            try:
                self._runs().filter(pk=self.result.run_id).update(**values)
                return
            except DatabaseError as exc:
                # The connection may have died with the run: reconnect once.
                connections[self.using].close()
                if attempt == 2:
                    logger.error("Could not record the run's end in the history: %s", exc)

    def purge(self):
        """Delete history rows older than ``MEDIA_CLEANUP_HISTORY_DAYS``; return how many."""
        cutoff = self.now - timedelta(days=conf.history_days())
        deleted, _ = self._runs().filter(started_at__lt=cutoff).exclude(pk=self.result.run_id).delete()
        return deleted


class Sweep:
    """One run's state: the collect, cap and remove phases of ``run_cleanup``."""

    def __init__(
        self,
        result,
        *,
        history,
        dry_run,
        min_age,
        force,
        time_limit,
        rate,
        now,
        using,
        storage,
        walker,
        media_ids,
        purge_quarantine,
        lock,
        on_item,
        on_progress,
    ):
        self.result = result
        self.lock = lock
        self.history = history
        self.dry_run = dry_run
        self.cutoff = (now - min_age).timestamp()
        self.force = force
        self.time_limit = time_limit.total_seconds() if time_limit is not None else None
        self.rate = rate
        self.using = using
        self.storage = storage
        self.walker = walker
        self.media_ids = media_ids
        self.now = now
        self.purge_everything = purge_quarantine
        self.binding = None
        self.quarantine = None
        self.quarantine_parts = 0
        self.on_item = on_item
        self.on_progress = on_progress
        self.connection = connections[using]
        self.started = time.monotonic()
        self.last_progress = self.started
        self.removed_items = 0
        self.removal_started = None
        self.owner_types = []
        self.row_files = 0  # files that go with orphaned rows (for the cap)
        # Distinct names that live rows reference, and how many of them are stored: a storage
        # that holds none of them is the wrong one.
        self.referenced = 0
        self.referenced_present = 0
        # Names refused as written but pointing into uploads/ once normalised ("uploads//x"):
        # their files count as referenced. Only odd rows land here, so it stays small.
        self.protected = set()

    def run(self):
        backend = backend_for(self.storage)
        self.walker = self.walker or backend.walker()
        self.binding = binding = Binding(self.storage, self.using)
        binding.check()
        if conf.quarantine_days() > 0 or self.purge_everything:
            self.quarantine = backend.quarantine()
        self.owner_types = self.find_owner_types()
        spill_dir = self.spill_dir()
        with Spill(spill_dir) as orphaned_rows, Spill(spill_dir) as orphaned_files:
            if self.media_ids is None:
                with planned_for_whole_results(self.connection):
                    self.collect(orphaned_rows, orphaned_files)
                self.report_progress(force=True)
                binding.check_holds_files(self.referenced, self.referenced_present, conf.cap_min_items())
                if self.refused_by_cap():
                    return
                if not (self.dry_run or binding.marked):
                    binding.claim()
            else:
                self.collect_selected(orphaned_rows)
            self.remove_orphaned_records(orphaned_rows)
            self.remove_orphaned_files(orphaned_files)
        if self.quarantine:
            self.purge_quarantined_runs()
        if not self.dry_run:
            purged = self.history.purge()
            if purged:
                logger.info("Purged %d old run(s) from the history", purged)

    # -- collect -----------------------------------------------------------------------------

    def find_owner_types(self):
        """Return the owner types in use; count the rows of stale ones, which are kept."""
        live, stale = owner_types(self.using)
        for content_type in stale:
            count = self.media().filter(content_type=content_type).count()
            self.result.stale_type_records += count
            self.item("stale type", f"{content_type.app_label}.{content_type.model} ({count} rows kept)")
        return live

    def orphaned_condition(self):
        return orphaned_condition(self.owner_types, self.using)

    def byte_order(self, field_name):
        collation = BYTE_ORDER_COLLATIONS.get(self.connection.vendor)
        return Collate(field_name, collation) if collation else models.F(field_name)

    def reference_names(self):
        """Yield every referenced name under ``uploads/`` in byte order, once per row."""
        streams = []
        for model, field_name in references.file_fields():
            rows = (
                model._base_manager.using(self.using)
                .order_by(self.byte_order(field_name))
                .values_list(field_name, flat=True)
            )
            streams.append(
                self._uploads_only(rows.iterator(chunk_size=STREAM_CHUNK), is_media=model is Media)
            )
        return _merge(streams)

    def _uploads_only(self, names, is_media):
        result = self.result
        for name in names:
            if is_media:
                result.records_checked += 1
            if not name:
                continue
            if in_uploads(name):
                yield name
                continue
            self.result.refused_paths += 1
            self.item("refused path", name)
            normalised = posixpath.normpath(name)
            if normalised.startswith(UPLOADS_PREFIX) and is_safe_name(normalised):
                self.protected.add(normalised)

    def orphaned_rows(self, spill):
        """Yield ``(name, pk)`` of orphaned rows in byte order; spill those with no file to go."""
        streams = []
        for owner_type in self.owner_types:
            # One query per type, so that PostgreSQL plans each as one hash anti-join.
            rows = (
                self.media()
                .filter(orphaned_condition([owner_type], self.using))
                .order_by(self.byte_order("file"))
                .values_list("file", "pk")
            )
            streams.append(rows.iterator(chunk_size=STREAM_CHUNK))
        for name, pk in _merge(streams):
            self.result.orphaned_records += 1
            self.item("orphaned record", f"{name} (row {pk})")
            if in_uploads(name):
                yield name, pk
            else:
                spill.append(str(pk), None, 0)  # the row goes; its path is never touched

    def collect(self, orphaned_rows, orphaned_files):
        """Count everything in one merge of references, orphaned rows and stored files."""
        result = self.result
        # The files first: a listing process starts at once and runs during the queries.
        with closing(self.walker.iter_files()) as stored_files:
            aligned = align(self.reference_names(), self.orphaned_rows(orphaned_rows), stored_files)
            for number, (name, reference_count, orphan_pks, stored) in enumerate(aligned):
                if number % 4096 == 0:
                    self.report_progress()
                live_references = reference_count - len(orphan_pks)
                if live_references > 0:
                    self.referenced += 1
                    self.referenced_present += stored is not None
                if stored is None:
                    if live_references > 0:
                        result.missing_files += live_references
                        self.item("missing file", name)
                    for pk in orphan_pks:
                        orphaned_rows.append(str(pk), None, 0)
                    continue
                result.files_checked += 1
                if reference_count == 0 and not orphan_pks:
                    self.collect_unreferenced(stored, orphaned_files)
                elif live_references <= 0 and not self.kept_in_layout(name):
                    # Only orphaned rows point at it: it goes with the first of them.
                    self.row_files += 1
                    orphaned_rows.append(str(orphan_pks[0]), name, stored.size)
                    for pk in orphan_pks[1:]:
                        orphaned_rows.append(str(pk), None, 0)
                else:
                    for pk in orphan_pks:
                        orphaned_rows.append(str(pk), None, 0)
        result.unreadable_names += self.walker.unreadable_names
        for message in self.walker.errors:
            result.add_error(message)

    def collect_selected(self, orphaned_rows):
        """Spill the orphaned rows among ``media_ids``, each with its file as the row describes it."""
        selected = self.media().filter(pk__in=self.media_ids)
        self.result.records_checked = selected.count()
        orphans = selected.filter(self.orphaned_condition()).values_list("pk", "file", "size")
        for pk, name, size in orphans.iterator(chunk_size=PAGE_SIZE):
            self.result.orphaned_records += 1
            self.item("orphaned record", f"{name} (row {pk})")
            if not in_uploads(name):
                self.result.refused_paths += 1
                orphaned_rows.append(str(pk), None, 0)
            elif self.kept_in_layout(name):
                orphaned_rows.append(str(pk), None, 0)  # the row goes, the entry stays
            else:
                orphaned_rows.append(str(pk), name, size)

    def collect_unreferenced(self, stored, orphaned_files):
        if stored.name in self.protected or self.kept_in_layout(stored.name):
            return
        if stored.modified > self.cutoff:
            self.result.young_files += 1
            self.item("young file", stored.name)
            return
        self.result.orphaned_files += 1
        self.item("orphaned file", stored.name)
        orphaned_files.append(stored.name, stored.size)

    def kept_in_layout(self, name):
        """Return True for a direct entry of ``uploads/``, which is never removed, and report it.

        Uploads are stored below ``uploads/<type>/``; a file or symlink directly in ``uploads/``
        is the operator's (a folder moved to another disk and linked back, say).
        """
        if not is_layout_entry(name):
            return False
        self.item("kept entry of uploads/", name)
        logger.info("Keeping %r: uploads/ and its direct entries are never removed", name)
        return True

    # -- cap ---------------------------------------------------------------------------------

    def refused_by_cap(self):
        """Refuse the run when it would delete too large a share of files or rows (unless forced)."""
        ratio, floor = conf.max_delete_ratio(), conf.cap_min_items()
        result = self.result
        reasons = []
        for doomed, total, kind in [
            (result.orphaned_files + self.row_files, result.files_checked, "files under uploads/"),
            (result.orphaned_records, result.records_checked, "media rows"),
        ]:
            if doomed > floor and doomed > ratio * total:
                reasons.append(f"{doomed} of {total} {kind}")
        if not reasons:
            return False
        limit = f"more than {ratio:.0%} and more than {floor} items"
        if self.force:
            logger.warning("Safety cap lifted by --force: deleting %s (%s)", " and ".join(reasons), limit)
            return False
        result.conditions.add(Status.REFUSED)
        result.message = (
            f"refused by the safety cap: the run would delete {' and '.join(reasons)} ({limit}). "
            "Nothing was deleted. Check that DATABASE_URL and MEDIA_ROOT point at the same "
            "installation; rerun with --force if this is really intended."
        )
        logger.error("Cleanup %s", result.message)
        return True

    # -- remove ------------------------------------------------------------------------------

    def remove_orphaned_records(self, spill):
        """Delete orphaned rows in batches, then (after each commit) the files only they used."""
        for batch in spill.batches(self.batch_size()):
            if self.stop_before_batch():
                return
            pks = [pk for pk, _, _ in batch]
            with transaction.atomic(using=self.using), signals.files_deleted_by_caller():
                still_orphaned = self.media().filter(pk__in=pks).filter(self.orphaned_condition())
                if self.quarantine and not self.dry_run:
                    # One read gives both the re-check and the manifest's row data.
                    rows = [row_entry(row) for row in still_orphaned.select_related("content_type")]
                    gone = {row["id"] for row in rows}
                    if rows:
                        self.record_in_quarantine(rows)
                else:
                    gone = {str(pk) for pk in still_orphaned.values_list("pk", flat=True)}
                if gone and not self.dry_run:
                    self.media().filter(pk__in=gone).delete()
            self.result.deleted_records += len(gone)
            for pk in gone:
                self.item("removed record" if not self.dry_run else "would remove record", pk)
            files = [(name, size) for pk, name, size in batch if pk in gone and name]
            self.remove_files(files, excluding={Media: gone})

    def remove_orphaned_files(self, spill):
        for batch in spill.batches(self.batch_size()):
            if self.stop_before_batch():
                return
            self.remove_files(batch)

    def remove_files(self, entries, excluding=None):
        """Delete the files of one batch that no row references at this moment."""
        if not entries:
            return
        referenced = references.referenced_names([name for name, _ in entries], self.using, excluding)
        doomed = []
        for name, size in entries:
            if name in referenced:
                logger.info("Keeping %r: a row references it again", name)
            else:
                doomed.append(StoredFile(name, size=size))
        if self.dry_run:
            for stored in doomed:
                self.count_deleted(stored, "would remove file")
            return
        if self.quarantine and doomed:
            self.record_in_quarantine([{"kind": "file", "name": f.name, "size": f.size} for f in doomed])
            outcomes = self.quarantine.move_in(self.result.run_id, doomed)
        else:
            outcomes = self.walker.delete(doomed)
        for stored, outcome, detail in outcomes:
            if outcome == Deletion.DELETED:
                self.count_deleted(stored, "quarantined file" if self.quarantine else "removed file")
                logger.info("Removed %r (%s bytes)", stored.name, stored.size)
            elif outcome == Deletion.GONE:
                self.result.already_gone += 1
                self.item("already gone", stored.name)
            else:
                self.result.add_error(f"{stored.name}: {detail}")
                logger.error("Could not remove %r: %s", stored.name, detail)
        self.pace(len(doomed))

    def count_deleted(self, stored, kind):
        self.result.deleted_files += 1
        if self.quarantine:
            self.result.quarantined_bytes += stored.size or 0
        else:
            self.result.bytes_freed += stored.size or 0
        self.item(kind, stored.name)

    def record_in_quarantine(self, entries):
        """Write a manifest part before its batch is carried out, opening the run's quarantine."""
        if not self.quarantine_parts:
            self.quarantine.begin(self.result.run_id, self.now, database=self.binding.database)
        self.quarantine_parts += 1
        self.quarantine.record(self.result.run_id, self.quarantine_parts, entries)

    def purge_quarantined_runs(self):
        """Purge quarantined runs past retention (all of them with ``purge_quarantine``).

        What the quarantine cannot read (a corrupt meta.json, a stray file) is never purged:
        each such entry is one error that names it and says what to do.
        """
        cutoff = (self.now - timedelta(days=conf.quarantine_days())).timestamp()
        runs, problems = self.quarantine.runs()
        for problem in problems:
            self.result.add_error(f"quarantine: {problem}")
            logger.error("Cannot read the quarantine: %s", problem)
        # Another database's runs (a quarantine shared by mistake) are its own to purge.
        for run_id, run in sorted(own_runs(runs, self.binding.database, self.using).items()):
            if run_id == self.result.run_id or not (self.purge_everything or run.created <= cutoff):
                continue
            try:
                size = self.quarantine.size(run_id) if self.dry_run else self.quarantine.purge(run_id)
            except (OSError, QuarantineError) as exc:
                # One run that cannot be purged (a file the system refuses to delete) is one
                # error; the others are purged, and the next sweep tries it again.
                self.result.add_error(f"quarantine: cannot purge run {run_id}: {one_line(exc)}")
                logger.error("Cannot purge quarantined run %s: %s", run_id, one_line(exc))
                continue
            self.result.purged_runs += 1
            self.result.purged_bytes += size
            self.result.bytes_freed += size
            self.item("would purge quarantined run" if self.dry_run else "purged quarantined run", run_id)
            logger.info("Purged quarantined run %s (%d bytes)", run_id, size)

    def media(self):
        return Media.objects.using(self.using)

    def batch_size(self):
        # With a rate, a batch is at most one second's worth, so pacing stays smooth.
        return max(1, min(PAGE_SIZE, self.rate)) if self.rate else PAGE_SIZE

    def stop_before_batch(self):
        """Return True when deletion must stop here (time limit); raise if the lock was lost."""
        self.lock.check()
        return self.out_of_time()

    def out_of_time(self):
        if Status.PARTIAL in self.result.conditions:
            return True
        if self.time_limit is None or time.monotonic() - self.started < self.time_limit:
            return False
        self.result.conditions.add(Status.PARTIAL)
        self.result.message = "stopped by --time-limit before everything was removed; the next run carries on"
        logger.warning("Cleanup %s", self.result.message)
        return True

    def pace(self, removed):
        """Sleep as needed so that removals stay under ``rate`` per second."""
        if not self.rate:
            return
        if self.removal_started is None:
            self.removal_started = time.monotonic()
        self.removed_items += removed
        ahead = self.removed_items / self.rate - (time.monotonic() - self.removal_started)
        if ahead > 0:
            time.sleep(ahead)

    def spill_dir(self):
        """Return where candidates spill: the temporary folder, which must lie outside MEDIA_ROOT."""
        folder = os.path.realpath(tempfile.gettempdir())
        location = getattr(self.walker, "root", None)
        if location and (folder + os.sep).startswith(os.path.realpath(location) + os.sep):
            raise StorageUnavailable(f"the temporary folder {folder} lies inside MEDIA_ROOT; set TMPDIR")
        return folder

    # -- reporting ---------------------------------------------------------------------------

    def item(self, kind, name):
        self.result.add_sample(kind, name)
        if self.on_item:
            self.on_item(kind, name)

    def report_progress(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_progress < PROGRESS_INTERVAL:
            return
        self.last_progress = now
        if self.on_progress:
            self.on_progress(self.result)
        self.history.progress()


def owner_types(using):
    """Return ``([(content type, model)], [stale content types])`` of the media rows' owners.

    A type is stale when it has no model any more, or a key that cannot match ``object_id``.
    """
    type_ids = Media.objects.using(using).order_by().values_list("content_type_id", flat=True).distinct()
    live, stale = [], []
    for content_type in ContentType.objects.using(using).filter(pk__in=list(type_ids)):
        model = content_type.model_class()
        if model is not None and isinstance(model._meta.pk, models.UUIDField):
            live.append((content_type, model))
        else:
            stale.append(content_type)
    return live, stale


def orphaned_condition(types, using):
    """Return a Q matching media rows whose owner row no longer exists (one anti-join per type)."""
    condition = Q(pk__in=[])
    for content_type, model in types:
        owners = model._base_manager.using(using).filter(pk=OuterRef("object_id"))
        condition |= Q(content_type=content_type) & ~Exists(owners)
    return condition


def orphaned_media_condition(using=DEFAULT_DB_ALIAS):
    """Return a Q matching the media rows the sweep counts as orphaned (the admin's filter uses it)."""
    return orphaned_condition(owner_types(using)[0], using)


def row_entry(media):
    """Return what a manifest keeps of a deleted media row, enough to re-create it."""
    return {
        "kind": "record",
        "id": str(media.pk),
        "content_type": [media.content_type.app_label, media.content_type.model],
        "object_id": str(media.object_id),
        "file": media.file.name,
        "original_name": media.original_name,
        "size": media.size,
        "mime_type": media.mime_type,
        "caption": media.caption,
        "created_at": media.created_at.isoformat(),
    }


@contextmanager
def planned_for_whole_results(connection):
    """Have PostgreSQL plan the sweep's cursors for reading every row, as the sweep does.

    By default PostgreSQL plans a cursor for a fast first row (``cursor_tuple_fraction``
    0.1): an orphan query then walks the name index with a per-row lookup (seconds at a
    million rows) instead of one hash anti-join and a small sort (a tenth of a second).
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET cursor_tuple_fraction = 1.0")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET cursor_tuple_fraction")
        except DatabaseError:
            pass  # the connection is gone, and the setting with it


# Sorts after every name the streams carry: they all start with "uploads/".
END = "\U0010ffff"


def align(references, orphans, stored_files):
    """Merge three streams sorted by name into one ``(name, references, orphan pks, stored)`` per name.

    ``references`` yields a name once per referencing row, ``orphans`` ``(name, pk)`` pairs, and
    ``stored_files`` ``StoredFile`` objects with unique names. A stream out of byte order (or a
    name listed twice) raises ``OutOfOrder``: the merge would otherwise see unreferenced files
    where there are none.
    """
    no_orphan = (END, None)
    reference = next(references, END)
    orphan_name, orphan_pk = next(orphans, no_orphan)
    stored = next(stored_files, None)
    stored_name = END if stored is None else stored.name
    previous = ""
    while True:
        name = reference if reference < stored_name else stored_name
        if orphan_name < name:
            name = orphan_name
        if name == END:
            return
        if name <= previous:
            raise OutOfOrder(f"the streams are not sorted by name: {name!r} came after {previous!r}")
        previous = name
        count = 0
        while reference == name:
            count += 1
            reference = next(references, END)
        pks = ()
        if orphan_name == name:
            pks = []
            while orphan_name == name:
                pks.append(orphan_pk)
                orphan_name, orphan_pk = next(orphans, no_orphan)
        here = None
        if stored_name == name:
            here = stored
            stored = next(stored_files, None)
            stored_name = END if stored is None else stored.name
        yield name, count, pks, here


def _merge(streams):
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams) if streams else iter(())
