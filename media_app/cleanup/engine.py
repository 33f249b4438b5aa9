"""The cleanup sweep: find what drifted between media rows and storage, and repair it safely.

``run_cleanup()`` is the one entry point; the command, the cron job and the admin call it.
A run has three phases:

1. **Collect**, in one pass over three streams sorted by name in byte order: every
   reference of every FileField (rows ordered by file name), the orphaned media rows (owner
   gone: one anti-join per owner type), and the files under ``uploads/`` (the walker). They
   come in pages and are cut into windows of the same names (``merge.windows()``): counted in
   bulk where they agree, name by name where they do not. Everything is counted; what would
   go is spilled to temporary files outside MEDIA_ROOT.
2. **Cap**: on those complete counts, before the first delete, refuse a run that would delete
   too large a share of the files or rows (the guard against an empty or wrong database).
3. **Remove**, in batches (``removal.py``): orphaned rows (then their files, after the
   commit), then orphaned files. Each batch is checked again against the database just
   before it goes (not in a dry run, where nothing goes). While batches of files are carried
   out, the next is checked: on S3 several at once, on local files one, in order.
"""

import gc
import itertools
import logging
import os
import posixpath
import tempfile
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from contextlib import ExitStack, closing

from django.db import DatabaseError, connections
from django.db.transaction import TransactionManagementError

from .. import conf
from ..models import Media
from ..paths import UPLOADS_PREFIX, in_uploads, is_layout_entry, is_safe_name
from .backends import backend_for
from .backends.base import QuarantineError, StorageUnavailable
from .binding import Binding, StorageRefused
from .cap import over_cap
from .history import RunHistory
from .lock import LockLost, cleanup_lock
from .merge import OutOfOrder, Stream, windows
from .options import CleanupOptions
from .pacing import Pacing
from .prefetch import Prefetched
from .removal import PAGE_SIZE, Removal
from .result import CleanupResult, Item, Status, one_line, summary
from .spill import Spill
from .streams import orphan_pages, planned_for_whole_results, reference_pages

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 2.0  # seconds between progress reports and history updates
# Pages read ahead: blocks of names from the listing (128 KiB each), pages of media rows (5,000).
# Each page ahead is memory: at these, the sweep and its listing stay under 90 MiB (measured).
LISTING_PAGES_AHEAD = 4
ROW_PAGES_AHEAD = 2


def run_cleanup(**options):
    """Remove media rows whose owner is gone and files under ``uploads/`` that nothing references.

    The keyword arguments are the fields of ``CleanupOptions``, which says what each does.

    With ``MEDIA_CLEANUP_QUARANTINE_DAYS`` > 0, a real run moves what it removes into the
    quarantine (``backends/``) instead of deleting it, and purges quarantined runs older
    than that; ``restore.restore_run()`` takes a run back.

    Only one run holds the lock at a time; another ends ``locked`` at once. Every run is
    recorded in ``CleanupRun``. Return a ``CleanupResult``; never raise for expected trouble.
    It must run in autocommit mode: inside a caller's transaction, files would go before the
    deletion of their rows commits, so that is refused with ``TransactionManagementError``.
    """
    options = CleanupOptions(**options)
    if connections[options.using].in_atomic_block:
        raise TransactionManagementError(
            "run_cleanup() must not run inside a transaction: files would be deleted before "
            "the deletion of their rows commits"
        )
    result = CleanupResult(run_id=options.run_id, dry_run=options.dry_run)
    history = RunHistory(result, options)
    started = time.monotonic()
    try:
        with cleanup_lock(options.using) as lock:
            if not lock:
                result.conditions.add(Status.LOCKED)
                result.message = "another cleanup run holds the lock; nothing was done"
                logger.warning("Cleanup not started: %s", result.message)
                history.record_locked()
                return result
            history.start()
            try:
                Sweep(result, options, history=history, lock=lock).run()
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


def freeze_loaded_objects():
    """Leave the objects loaded so far out of the garbage collector's passes, in a process made to sweep.

    A sweep reads millions of rows, each a new tuple, and the collector's full passes then walk
    every object Django and the project loaded at start-up, again and again: about 8% of a dry
    run of a million files (docs/benchmarks.md). ``gc.freeze()`` leaves those out. For the
    processes that exist to run one sweep (the command, the cron job), not for a web server.
    """
    gc.freeze()


class Sweep:
    """One run under the lock: the collect and cap phases, then a ``Removal`` of what was found."""

    def __init__(self, result, options, *, history, lock):
        self.result = result
        self.options = options
        self.history = history
        self.walker = None
        self.lock = lock
        self.cutoff = (options.now - options.min_age).timestamp()
        self.connection = connections[options.using]
        self.pacing = Pacing(options.rate, options.time_limit)
        self.last_progress = time.monotonic()
        self.owner_types = []
        self.row_files = 0  # files that go with orphaned rows (for the cap)
        # Distinct names that live rows reference, and how many of them are stored: a storage
        # that holds none of them is the wrong one.
        self.referenced = 0
        self.referenced_present = 0
        # Names refused as written but pointing into uploads/ once normalised ("uploads//x"):
        # their files count as referenced. Only odd rows land here, so it stays small.
        self.protected = set()
        self.undescribed = None  # during the collect: the files whose size and time are read after it

    def run(self):
        """Check the storage's binding, collect, apply the cap, then remove what was found."""
        options = self.options
        # Built here, inside the run's error handling: a storage no backend serves ends the run
        # failed, in one line.
        backend = backend_for(options.storage)
        self.walker = options.walker or backend.walker()
        binding = Binding(options.storage, options.using)
        binding.check()
        quarantine = None
        if conf.quarantine_days() > 0 or options.purge_quarantine:
            quarantine = backend.quarantine()
        self.owner_types = self.find_owner_types()
        removal = Removal(
            self.result,
            options,
            history=self.history,
            walker=self.walker,
            quarantine=quarantine,
            database=binding.database,
            owner_types=self.owner_types,
            lock=self.lock,
            pacing=self.pacing,
            item=self.item,
        )
        spill_dir = self.spill_dir()
        with Spill(spill_dir) as orphaned_rows, Spill(spill_dir) as orphaned_files:
            if options.media_ids is None:
                with planned_for_whole_results(self.connection):
                    self.collect(orphaned_rows, orphaned_files)
                self.report_progress(force=True)
                binding.check_holds_files(self.referenced, self.referenced_present, conf.cap_min_items())
                if self.refused_by_cap():
                    return
                if not (options.dry_run or binding.marked):
                    binding.claim()
            else:
                self.collect_selected(orphaned_rows)
            with closing(removal):
                removal.remove_orphans(orphaned_rows, orphaned_files)
        if quarantine:
            removal.purge_quarantined_runs()
        if not options.dry_run:
            purged = self.history.purge()
            if purged:
                logger.info("Purged %d old run(s) from the history", purged)

    # -- collect -----------------------------------------------------------------------------

    def find_owner_types(self):
        """Return the owner types in use; count the rows of stale ones, which are kept."""
        media = Media.objects.using(self.options.using)
        live, stale = media.owner_types()
        for content_type in stale:
            count = media.filter(content_type=content_type).count()
            self.result.stale_type_records += count
            self.item(Item.STALE_TYPE, f"{content_type.app_label}.{content_type.model} ({count} rows kept)")
        return live

    def collect(self, orphaned_rows, orphaned_files):
        """Count everything in one merge of references, orphaned rows and stored files, window by window."""
        with Spill(self.spill_dir()) as self.undescribed:
            with ExitStack() as streams_open:
                streams, other_fields = self.open_streams(streams_open)
                for stored, media_rows, *rest in windows(streams):
                    other_names = [names for names, _ in rest[:other_fields]]
                    orphans = rest[other_fields:]
                    self.collect_window(
                        stored, media_rows, other_names, orphans, orphaned_rows, orphaned_files
                    )
                    self.report_progress()
            self.collect_undescribed(orphaned_files)
        result = self.result
        result.storage_files = result.files_checked
        result.unreadable_names += self.walker.unreadable_names
        for message in self.walker.errors:
            result.add_error(message)

    def open_streams(self, streams_open):
        """Return the merge's streams, closed by ``streams_open``, and how many other FileFields they hold.

        The files first: a listing process starts at once and runs during the queries. The
        listing and the media rows, the long streams, are read ahead in threads of their own.
        """
        using = self.options.using
        listing = Prefetched(self.walker.iter_pages(), LISTING_PAGES_AHEAD, name="listing")
        stored_pages = streams_open.enter_context(closing(listing))
        media, others = reference_pages(using)
        media = streams_open.enter_context(closing(Prefetched(media, ROW_PAGES_AHEAD, name="media rows")))
        streams = [
            Stream(stored_pages, unique=True, what="stored files"),
            Stream(media, unique=False, what="media rows"),
            *(Stream(pages, False, f"rows of {model._meta.label}") for model, pages in others),
            *(Stream(pages, False, "orphaned rows") for pages in orphan_pages(using, self.owner_types)),
        ]
        return streams, len(others)

    def collect_undescribed(self, orphaned_files):
        """Count the files that wait for their size and time, now that the merge is over.

        Read during the merge, each ``lstat`` handed the interpreter to the threads reading
        ahead, and took 50 µs to get it back instead of 3 (measured: a fifth of a dry run of a
        million files, for the 1% that no row describes). They are read here, alone.
        """
        for batch in self.undescribed.batches(PAGE_SIZE):
            for name, unreferenced in batch:
                stored = self.walker.stored(name)
                try:
                    size = stored.size
                except FileNotFoundError:
                    continue  # gone since the listing: nothing to count, nothing to remove
                self.result.storage_bytes += size or 0
                if unreferenced:
                    self.collect_unreferenced(stored, orphaned_files)

    def collect_window(self, stored, media, others, orphans, orphaned_rows, orphaned_files):
        """Count one window of names: in bulk where the streams agree, name by name where they do not.

        Most names are the same plain thing in every stream: one live media row, one stored file.
        Those are counted with set operations; every other name (a file nothing references, a
        row whose file is missing, an orphaned row, a name referenced twice or by another model)
        goes through ``collect_name()``, in byte order.
        """
        result = self.result
        file_names, files_listed = stored
        media_names, media_sizes = media
        result.records_checked += len(media_names)
        result.files_checked += len(file_names)
        names = [*media_names, *itertools.chain.from_iterable(others)] if others else media_names
        files = set(file_names)
        referenced = set(names)
        # A name the listing gives is one the sweep may touch, unless a backslash in it makes it
        # climb once read as a separator (local files): only the names no file has are tested
        # one by one, and they are few.
        plain_names = "\\" not in "".join(names) and all(map(in_uploads, referenced - files))
        if not plain_names:
            names = self.refuse_outside_uploads(names)
            referenced = set(names)
        orphan_pks = self.orphans_in_uploads(orphans, orphaned_rows)
        # Special: whatever is not one live media row with its file.
        disagree = referenced ^ files
        special = set(disagree)
        special.update(orphan_pks)
        for other in others:
            special.update(other)
        counts = Counter(names) if len(referenced) != len(names) else None
        if counts is not None:
            special.update(name for name, count in counts.items() if count > 1)
        common = (len(referenced) + len(files) - len(disagree)) // 2
        plain = common - sum(1 for name in special if name in files and name in referenced)
        self.referenced += plain
        self.referenced_present += plain
        if files_listed is not None:
            # Listed with their sizes (object storage): all of them here, none in collect_name().
            result.storage_bytes += sum(stored.size or 0 for stored in files_listed)
        elif plain_names:
            # Local files: the size each row recorded at upload, no lstat per file. Every row
            # names a plain file here but those of special names, counted one by one below.
            result.storage_bytes += sum(media_sizes) - sum(
                sum(media_sizes[bisect_left(media_names, name) : bisect_right(media_names, name)])
                for name in special
            )
        else:
            result.storage_bytes += sum(
                size
                for name, size in zip(media_names, media_sizes, strict=True)
                if name in files and name not in special
            )
        for name in sorted(special):
            here = None
            if name in files:
                if files_listed is None:
                    here = self.walker.stored(name)
                else:
                    here = files_listed[bisect_left(file_names, name)]
            count = counts[name] if counts is not None else int(name in referenced)
            self.collect_name(
                name,
                count,
                orphan_pks.get(name, ()),
                here,
                recorded_size(media_names, media_sizes, name),
                orphaned_rows,
                orphaned_files,
            )

    def collect_name(self, name, references, orphan_pks, stored, recorded, orphaned_rows, orphaned_files):
        """Count one name that is not simply one live media row with its file.

        ``recorded`` is the size a media row of that name recorded at upload, or None.
        """
        result = self.result
        live_references = references - len(orphan_pks)
        if live_references > 0:
            self.referenced += 1
            self.referenced_present += stored is not None
        if stored is None:
            if live_references > 0:
                result.missing_files += live_references
                self.item(Item.MISSING_FILE, name)
            for pk in orphan_pks:
                orphaned_rows.append(str(pk), None, 0)
            return
        size = stored.known_size
        if size is None and recorded is None:
            # A listing of names only (local files), and no media row that recorded the size:
            # the storage is asked after the merge (collect_undescribed()). Such a name has no
            # media row, so no orphaned one: what is left to count is its size, and its time
            # when nothing references it.
            self.undescribed.append(name, references == 0)
            return
        if size is None:
            size = recorded
            result.storage_bytes += size or 0
        if references == 0 and not orphan_pks:
            self.collect_unreferenced(stored, orphaned_files)
        elif live_references <= 0 and not self.kept_in_layout(name):
            # Only orphaned rows point at it: it goes with the first of them.
            self.row_files += 1
            orphaned_rows.append(str(orphan_pks[0]), name, size)
            for pk in orphan_pks[1:]:
                orphaned_rows.append(str(pk), None, 0)
        else:
            for pk in orphan_pks:
                orphaned_rows.append(str(pk), None, 0)

    def refuse_outside_uploads(self, names):
        """Report the referenced names the sweep may not touch; return the others (empty ones left out)."""
        kept = []
        for name in names:
            if not name:
                continue
            if in_uploads(name):
                kept.append(name)
                continue
            self.result.refused_paths += 1
            self.item(Item.REFUSED_PATH, name)
            normalised = posixpath.normpath(name)
            if normalised.startswith(UPLOADS_PREFIX) and is_safe_name(normalised):
                # Its file counts as referenced: a name such as "uploads//x" is refused as
                # written, but names the file "uploads/x".
                self.protected.add(normalised)
        return kept

    def orphans_in_uploads(self, orphans, orphaned_rows):
        """Count a window's orphaned rows; return ``{name: [pk, ...]}`` of those the sweep may touch.

        A row whose name the sweep may not touch goes without its file.
        """
        by_name = {}
        for names, pks in orphans:
            for name, pk in zip(names, pks, strict=True):
                self.result.orphaned_records += 1
                self.item(Item.ORPHANED_RECORD, f"{name} (row {pk})")
                if in_uploads(name):
                    by_name.setdefault(name, []).append(pk)
                else:
                    orphaned_rows.append(str(pk), None, 0)  # the row goes; its path is never touched
        return by_name

    def collect_selected(self, orphaned_rows):
        """Spill the orphaned rows among ``media_ids``, each with its file as the row describes it."""
        selected = Media.objects.using(self.options.using).filter(pk__in=self.options.media_ids)
        self.result.records_checked = selected.count()
        orphans = selected.orphaned(self.owner_types).values_list("pk", "file", "size")
        for pk, name, size in orphans.iterator(chunk_size=PAGE_SIZE):
            self.result.orphaned_records += 1
            self.item(Item.ORPHANED_RECORD, f"{name} (row {pk})")
            if not in_uploads(name):
                self.result.refused_paths += 1
                orphaned_rows.append(str(pk), None, 0)
            elif self.kept_in_layout(name):
                orphaned_rows.append(str(pk), None, 0)  # the row goes, the entry stays
            else:
                orphaned_rows.append(str(pk), name, size)

    def collect_unreferenced(self, stored, orphaned_files):
        """Count a stored file that nothing references: kept, young, or orphaned (spilled to go)."""
        if stored.name in self.protected or self.kept_in_layout(stored.name):
            return
        if stored.modified > self.cutoff:
            self.result.young_files += 1
            self.item(Item.YOUNG_FILE, stored.name)
            return
        self.result.orphaned_files += 1
        self.item(Item.ORPHANED_FILE, stored.name)
        orphaned_files.append(stored.name, stored.size)

    def kept_in_layout(self, name):
        """Return True for a direct entry of ``uploads/``, which is never removed, and report it.

        Uploads are stored below ``uploads/<type>/``; a file or symlink directly in ``uploads/``
        is the operator's (a folder moved to another disk and linked back, say).
        """
        if not is_layout_entry(name):
            return False
        self.item(Item.KEPT_LAYOUT_ENTRY, name)
        logger.info("Keeping %r: uploads/ and its direct entries are never removed", name)
        return True

    def spill_dir(self):
        """Return where candidates spill: the temporary folder, which must lie outside MEDIA_ROOT."""
        folder = os.path.realpath(tempfile.gettempdir())
        location = getattr(self.walker, "root", None)
        if location and (folder + os.sep).startswith(os.path.realpath(location) + os.sep):
            raise StorageUnavailable(f"the temporary folder {folder} lies inside MEDIA_ROOT; set TMPDIR")
        return folder

    # -- cap ---------------------------------------------------------------------------------

    def refused_by_cap(self):
        """Refuse the run when it would delete too large a share of files or rows (unless forced)."""
        result = self.result
        excess = over_cap(
            files=result.orphaned_files + self.row_files,
            files_listed=result.files_checked,
            rows=result.orphaned_records,
            rows_checked=result.records_checked,
            ratio=conf.max_delete_ratio(),
            floor=conf.cap_min_items(),
        )
        if not excess:
            return False
        if self.options.force:
            logger.warning("Safety cap lifted by --force: deleting %s", excess)
            return False
        result.conditions.add(Status.REFUSED)
        result.message = (
            f"refused by the safety cap: the run would delete {excess}. "
            "Nothing was deleted. Check that DATABASE_URL and MEDIA_ROOT point at the same "
            "installation; rerun with --force if this is really intended."
        )
        logger.error("Cleanup %s", result.message)
        return True

    # -- reporting ---------------------------------------------------------------------------

    def item(self, kind, name):
        """Report one name of ``kind``: into the result's sample, and to the face's ``on_item``."""
        self.result.add_sample(kind, name)
        if self.options.on_item:
            self.options.on_item(kind, name)

    def report_progress(self, force=False):
        """Pass the figures so far to ``on_progress`` and the history, at most every few seconds."""
        now = time.monotonic()
        if not force and now - self.last_progress < PROGRESS_INTERVAL:
            return
        self.last_progress = now
        if self.options.on_progress:
            self.options.on_progress(self.result)
        self.history.progress()


def recorded_size(names, sizes, name):
    """Return the size recorded at upload by the media row named ``name``, or None without one.

    ``names`` is a window's media row names, in order, and ``sizes`` their sizes. On local files
    the listing gives no size, and an ``lstat`` per file cost the dry run of a million files
    60% more time (measured): only a file no media row records is read from the storage.
    """
    index = bisect_left(names, name)
    if index < len(names) and names[index] == name:
        return sizes[index]
    return None
