"""The sweep's last phase: remove what the collect phase found, in batches checked just before they go.

Orphaned rows go first, each batch in a transaction, then (after its commit) the files only
they used; then the orphaned files, or, when ``files_process.py`` may, the orphaned files at
the same time in a forked process. With the quarantine, a manifest part is written before its
batch is carried out, and what is removed is moved into the quarantine instead of deleted.
"""

import collections
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models.deletion import Collector

from .. import conf, references
from ..files import files_deleted_by_caller
from ..models import Media
from . import files_process
from .backends.base import Deletion, QuarantineError, StoredFile
from .binding import own_runs
from .result import Item, Status, one_line

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000


class Removal:
    """Remove one run's orphaned rows and files, and purge its database's expired quarantined runs."""

    def __init__(
        self, result, options, *, history, walker, quarantine, database, owner_types, lock, pacing, item
    ):
        self.result = result
        self.options = options
        self.history = history
        self.walker = walker
        self.quarantine = quarantine  # None when removed files are deleted at once
        self.database = database
        self.owner_types = owner_types
        self.lock = lock
        self.pacing = pacing
        self.item = item
        self.quarantine_begun = False
        self.size_known = True  # False once a files process ended without saying what it moved
        self.next_part, self.part_step = 1, 1  # a files process beside takes every other number
        self.files_mover = None  # threads that carry out the batches of files
        self.in_flight = collections.deque()  # (future of the outcomes, file count) per batch, oldest first

    def remove_orphans(self, orphaned_rows, orphaned_files):
        """Remove the orphaned rows, then the orphaned files; the files beside the rows when they may."""
        beside = None
        if files_process.suits(self, orphaned_files):
            beside = files_process.FilesProcess(self, orphaned_files)
            try:
                beside.start()
            except OSError as exc:
                logger.warning("Cannot fork a files process (%s): the files go after the rows", exc)
                beside = None
        if beside is None:
            self.remove_orphaned_records(orphaned_rows)
            self.remove_orphaned_files(orphaned_files)
            return
        with beside:
            self.remove_orphaned_records(orphaned_rows)
            self.finish_batches()
            beside.join()

    def prepare_for_files_process(self):
        """Before a files process forks: open the run's quarantine once; leave it the even part numbers."""
        if self.quarantine:
            self.begin_quarantine()
        self.part_step = 2

    def take_even_parts(self):
        """In the files process, forked before the parent wrote a part: number its parts 2, 4, 6..."""
        self.next_part = 2

    def remove_orphaned_records(self, spill):
        """Delete orphaned rows in batches, then (after each commit) the files only they used."""
        dry_run = self.options.dry_run
        for batch in spill.batches(self.pacing.batch_size(PAGE_SIZE)):
            if self.stop_before_batch():
                return
            pks = [pk for pk, _, _ in batch]
            if dry_run:
                # Nothing goes, so nothing is checked again: a dry run reports what it found.
                gone = set(pks)
            else:
                gone = self.delete_records(pks)
            self.result.deleted_records += len(gone)
            for pk in gone:
                self.item(Item.WOULD_REMOVE_RECORD if dry_run else Item.REMOVED_RECORD, pk)
            files = [(name, size) for pk, name, size in batch if pk in gone and name]
            self.remove_files(files)

    def delete_records(self, pks):
        """Delete those of the rows ``pks`` still orphaned now, in one transaction; return their pks."""
        using = self.options.using
        with transaction.atomic(using=using), files_deleted_by_caller():
            media = Media.objects.using(using).order_by()
            # One read gives the re-check, the manifest's row data and the rows to delete.
            rows = media.filter(pk__in=pks).orphaned_instances(self.owner_types)
            if not rows:
                return set()
            gone = {str(row.pk) for row in rows}
            if self.quarantine:
                types = ContentType.objects.db_manager(using)  # cached: no query per row
                entries = [row_entry(row, types.get_for_id(row.content_type_id)) for row in rows]
                self.record_in_quarantine(entries)
            # What QuerySet.delete() does (signals, cascades), without reading the rows again.
            collector = Collector(using=using, origin=media.filter(pk__in=[row.pk for row in rows]))
            collector.collect(rows)
            collector.delete()
        return gone

    def remove_orphaned_files(self, spill):
        """Remove the orphaned files in batches."""
        for batch in spill.batches(self.pacing.batch_size(PAGE_SIZE)):
            if self.stop_before_batch():
                return
            self.remove_files(batch)

    def remove_files(self, entries):
        """Delete the files of one batch that no row references at this moment (a dry run asks not)."""
        if not entries:
            return
        names = [name for name, _ in entries]
        referenced = set()
        if not self.options.dry_run:
            referenced = references.referenced_names(names, self.options.using)
        doomed = []
        for name, size in entries:
            if name in referenced:
                logger.info("Keeping %r: a row references it again", name)
            else:
                doomed.append(StoredFile(name, size=size))
        if self.options.dry_run:
            for stored in doomed:
                self._count_deleted(stored, Item.WOULD_REMOVE_FILE)
            return
        if self.quarantine and doomed:
            self.record_in_quarantine([{"kind": "file", "name": f.name, "size": f.size} for f in doomed])
            outcomes = self.quarantine.move_in(self.result.run_id, doomed)
        else:
            outcomes = self.walker.delete(doomed)
        # The files go in threads of their own: as many batches at once as the storage carries
        # out at once (see stop_before_batch). What became of a batch is counted here, in order.
        self.in_flight.append((self.mover().submit(list, outcomes), len(doomed)))

    def mover(self):
        if self.files_mover is None:
            self.files_mover = ThreadPoolExecutor(self.walker.concurrency, thread_name_prefix="cleanup-files")
        return self.files_mover

    def settle(self):
        """Wait for the oldest batch in flight and count what became of each file; raise what it raised."""
        future, count = self.in_flight.popleft()
        for stored, outcome, detail in future.result():
            if outcome == Deletion.DELETED:
                self._count_deleted(stored, Item.QUARANTINED_FILE if self.quarantine else Item.REMOVED_FILE)
                logger.info("Removed %r (%s bytes)", stored.name, stored.size)
            elif outcome == Deletion.GONE:
                self.result.already_gone += 1
                self.item(Item.ALREADY_GONE, stored.name)
            else:
                self.result.add_error(f"{stored.name}: {detail}")
                logger.error("Could not remove %r: %s", stored.name, detail)
        self.pacing.pace(count)

    def finish_batches(self):
        """Let the batches in flight finish and count them."""
        if self.files_mover is not None:
            try:
                while self.in_flight:
                    self.settle()
            finally:
                self.files_mover.shutdown(wait=True)
                self.files_mover = None

    def close(self):
        """Let the batches in flight finish and count them, then record what the quarantine holds of the run.

        Nothing is removed once the run is over. The record spares every later sweep measuring
        this run's files one by one while it is kept; a run whose batches did not all settle
        leaves none, and is measured instead.
        """
        self.finish_batches()
        if self.quarantine_begun and self.size_known:
            try:
                self.quarantine.record_size(self.result.run_id, self.result.quarantined_bytes)
            except QuarantineError as exc:
                logger.warning("Cannot record the size of quarantined run %s: %s", self.result.run_id, exc)

    def _count_deleted(self, stored, kind):
        self.result.deleted_files += 1
        if self.quarantine:
            self.result.quarantined_bytes += stored.size or 0
        else:
            self.result.bytes_freed += stored.size or 0
        self.item(kind, stored.name)

    def begin_quarantine(self):
        if not self.quarantine_begun:
            self.quarantine.begin(self.result.run_id, self.options.now, database=self.database)
            self.result.restorable = True
            self.quarantine_begun = True

    def record_in_quarantine(self, entries):
        """Write a manifest part before its batch is carried out, opening the run's quarantine."""
        self.begin_quarantine()
        part, self.next_part = self.next_part, self.next_part + self.part_step
        self.quarantine.record(self.result.run_id, part, entries)

    def stop_before_batch(self):
        """Return True when deletion must stop here (time limit); raise if the lock was lost.

        First the batches in flight make room for this one: as many as the storage carries out
        at once (one on local files, one per connection on S3) may still be under way while it
        is checked, in the order they were checked. A run stopped anywhere (killed, its
        database or its lock gone) has carried out, or recorded in its manifest, only batches
        it checked while it held its lock.
        """
        while len(self.in_flight) > self.walker.concurrency:
            self.settle()
        self.lock.check()
        if Status.PARTIAL in self.result.conditions:
            return True
        if not self.pacing.out_of_time():
            return False
        self.result.conditions.add(Status.PARTIAL)
        self.result.message = "stopped by --time-limit before everything was removed; the next run carries on"
        logger.warning("Cleanup %s", self.result.message)
        return True

    def purge_quarantined_runs(self):
        """Purge quarantined runs past retention (all of them with ``purge_quarantine``).

        What the quarantine cannot read (a corrupt meta.json, a stray file) is never purged:
        each such entry is one error that names it and says what to do. ``quarantine_bytes``
        sums what stays: the runs kept, and this run's own files (in a dry run, what a real run
        would leave).
        """
        options = self.options
        cutoff = (options.now - timedelta(days=conf.quarantine_days())).timestamp()
        runs, problems = self.quarantine.runs()
        for problem in problems:
            self.result.add_error(f"quarantine: {problem}")
            logger.error("Cannot read the quarantine: %s", problem)
        # Another database's runs (a quarantine shared by mistake) are its own to purge.
        for run_id, run in sorted(own_runs(runs, self.database, options.using).items()):
            if run_id == self.result.run_id:
                continue
            if not (options.purge_quarantine or run.created <= cutoff):
                self.result.quarantine_bytes += self.kept_size(run_id)
                continue
            try:
                size = self.quarantine.size(run_id) if options.dry_run else self.quarantine.purge(run_id)
            except (OSError, QuarantineError) as exc:
                # One run that cannot be purged (a file the system refuses to delete) is one
                # error; the others are purged, and the next sweep tries it again.
                self.result.add_error(f"quarantine: cannot purge run {run_id}: {one_line(exc)}")
                logger.error("Cannot purge quarantined run %s: %s", run_id, one_line(exc))
                if not options.dry_run:
                    self.result.quarantine_bytes += self.kept_size(run_id)  # what a failed purge left
                continue
            if not options.dry_run:
                self.history.forget_quarantine(run_id)
            self.result.purged_runs += 1
            self.result.purged_bytes += size
            self.result.bytes_freed += size
            self.item(Item.WOULD_PURGE_RUN if options.dry_run else Item.PURGED_RUN, run_id)
            logger.info("Purged quarantined run %s (%d bytes)", run_id, size)
        # This run's own files were counted as they went in: no need to list them again.
        self.result.quarantine_bytes += self.result.quarantined_bytes

    def kept_size(self, run_id):
        """Return the bytes a run that stays in the quarantine holds; 0, logged, when they cannot be read."""
        try:
            return self.quarantine.size(run_id)
        except (OSError, QuarantineError) as exc:
            logger.warning("Cannot measure quarantined run %s: %s", run_id, one_line(exc))
            return 0


def row_entry(row, content_type):
    """Return the manifest entry of a deleted media row of ``content_type``: enough to create it again."""
    return {
        "kind": "record",
        "id": str(row.pk),
        "content_type": [content_type.app_label, content_type.model],
        "object_id": str(row.object_id),
        "file": row.file.name,
        "original_name": row.original_name,
        "size": row.size,
        "mime_type": row.mime_type,
        "caption": row.caption,
        "created_at": row.created_at.isoformat(),
    }
