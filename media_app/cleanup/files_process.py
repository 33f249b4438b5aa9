"""The orphaned files' batches in a process of their own, beside the orphaned rows' batches.

A real run's removals are Python work on one interpreter lock: the rows' batches (re-check,
``Collector``, manifest) and the files' batches (re-check, manifest, renames) take turns on it
while a core stands partly idle (docs/benchmarks.md). On PostgreSQL with local files, a process
that exists to run one sweep (the command, the cron job) forks once the cap has let the run go
on: the child carries out the orphaned files' batches on a database session of its own while
the parent carries out the rows'. The two sets never meet: an orphaned file is one no row
references, and a row's files are removed with the row.

What the run promises holds in the child as in the parent. Each batch is re-checked against
the database just before it goes, and its manifest part written before it moves. Before each
batch the child checks that the run still holds its lock (the advisory lock's session, as
``pg_locks`` shows it) and that the parent has not stopped: the parent holds the one write
end of a pipe that the child watches, closed when the parent stops or dies. Manifest parts
never share a number: the parent's are odd, the child's even.

The child reports through a temporary file made before the fork: one JSON line per item and
per error, then its figures. The parent replays them into the run's result once the child
has ended, before the run records what its quarantine holds.
"""

import json
import logging
import os
import select
import tempfile
import threading

from django.db import DatabaseError, connections

from .backends.base import QuarantineError
from .backends.filesystem import FilesystemWalker
from .backends.filesystem_quarantine import FilesystemQuarantine
from .lock import LockLost, held_by
from .result import MAX_ERROR_MESSAGES, CleanupResult, Status

logger = logging.getLogger(__name__)

# What the child counts, added to the parent's result when it ends.
FIGURES = ("deleted_files", "quarantined_bytes", "bytes_freed", "already_gone", "error_count")
# Errors the child may meet, raised again by the parent as the run's own (``run_cleanup``).
ERRORS = {"LockLost": LockLost, "QuarantineError": QuarantineError, "DatabaseError": DatabaseError}
# What the parent writes to the child's pipe when it stops on purpose (see _end_with_the_parent).
STOP = b"s"
# The parent's database connections, kept from the garbage collector in the child (never closed there).
_INHERITED = []


def suits(removal, spill):
    """Return True when ``removal`` may carry out the orphaned files in ``spill`` in a process of its own."""
    options = removal.options
    return (
        options.files_process
        and not options.dry_run
        and not options.rate  # one rate for the run, not one per process
        and hasattr(os, "fork")
        and len(spill) > 0
        and connections[options.using].vendor == "postgresql"
        and getattr(removal.lock, "session", None) is not None
        and type(removal.walker) is FilesystemWalker
        and (removal.quarantine is None or type(removal.quarantine) is FilesystemQuarantine)
    )


class FilesProcess:
    """Carry out the orphaned files' batches in a forked child, from ``start()`` until ``join()``.

    As a context manager around the parent's own batches: on the way out before ``join()``
    (the parent failed), the child is told to stop, waited for, and what it carried out is
    counted; its own error is then not raised over the parent's.
    """

    def __init__(self, removal, spill):
        self.removal = removal
        self.spill = spill
        self.pid = None
        self.stop_write = None
        self.journal = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if self.pid is not None:
            self.stop()
            self.reap(raise_error=False)

    def start(self):
        """Fork the child; raise ``OSError`` when the system cannot (the parent then does it all)."""
        removal = self.removal
        removal.lock.check()
        lock_pid = removal.lock.session_pid()
        # Opened here, so that both see it: the child writes, the parent reads once it has ended.
        self.journal = tempfile.TemporaryFile()
        stop_read, self.stop_write = os.pipe()
        removal.prepare_for_files_process()
        try:
            pid = os.fork()
        except OSError:
            os.close(stop_read)
            self.stop()
            self.journal.close()
            raise
        if pid == 0:  # the child: never returns
            os.close(self.stop_write)
            _run_child(removal, self.spill, self.journal, stop_read, lock_pid)
        os.close(stop_read)
        self.pid = pid
        logger.info("Removing the orphaned files in process %d", pid)

    def stop(self):
        """Tell the child to stop before its next batch."""
        if self.stop_write is not None:
            try:
                os.write(self.stop_write, STOP)
            except OSError:
                pass  # the child has ended: nobody reads
            os.close(self.stop_write)
            self.stop_write = None

    def join(self):
        """Wait for the child to end; count what it did; raise the error that stopped it."""
        self.reap(raise_error=True)

    def reap(self, raise_error):
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        self.stop()
        report = self.replay()
        self.journal.close()
        if report is None:
            self.removal.size_known = False
            message = f"the process removing the orphaned files ended without a report ({_ended(status)})"
            if raise_error:
                raise RuntimeError(message)
            logger.error("Cleanup: %s", message)
            return
        raised = report.get("raised")
        if raised and raise_error:
            raise ERRORS.get(raised, RuntimeError)(report["message"])
        if raised:
            logger.warning("Cleanup: the process removing the orphaned files stopped: %s", report["message"])

    def replay(self):
        """Replay the child's items and errors into the run's result; return its report, or None."""
        removal = self.removal
        result = removal.result
        self.journal.seek(0)
        report = None
        for line in self.journal:
            record = json.loads(line)
            if record[0] == "item":
                removal.item(record[1], record[2])
            elif record[0] == "log":
                fields = record[1]
                if isinstance(fields.get("args"), list):
                    fields["args"] = tuple(fields["args"])  # JSON has no tuples: % needs one
                logged = logging.makeLogRecord(fields)
                logging.getLogger(logged.name).handle(logged)
            elif record[0] == "error":
                if len(result.errors) < MAX_ERROR_MESSAGES:
                    result.errors.append(record[1])  # counted in the report's error_count
            else:
                report = record[1]
        if report is None:
            return None
        for name in FIGURES:
            setattr(result, name, getattr(result, name) + report[name])
        if Status.PARTIAL in report["conditions"] and Status.PARTIAL not in result.conditions:
            result.conditions.add(Status.PARTIAL)
            result.message = result.message or report["message"]
        return report


class ChildLock:
    """The run's lock as the child checks it before each batch: held by the parent's lock session."""

    def __init__(self, stop_read, lock_pid, using):
        self.stop_read = stop_read
        self.lock_pid = lock_pid
        self.using = using

    def check(self):
        readable, _, _ = select.select([self.stop_read], [], [], 0)
        if readable:  # the parent closed its end: it stopped, or died
            raise LockLost("the sweep stopped; the process removing the orphaned files stopped with it")
        held_by(self.using, self.lock_pid)


class Journal:
    """What the child writes for the parent: JSON lines of items, log records and errors, then its report."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, record):
        self.handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def item(self, kind, name):
        self.write(["item", kind, name])

    def log_record(self, logger, record):
        """Take the place of ``Logger.handle`` in the child: keep the record for the parent to handle.

        As ``logging.handlers.SocketHandler`` sends a record to another process: its attributes,
        the exception formatted as text. The parent's handlers (the console, the mail to the
        admins, Sentry) then see it as one of the sweep's own; none of them runs in the child.
        """
        if logger.disabled:
            return
        fields = dict(record.__dict__)
        if record.exc_info:
            fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
        fields["exc_info"] = None
        try:
            self.write(["log", fields])
        except (TypeError, ValueError):  # arguments JSON cannot carry: the message as text
            fields.update(msg=record.getMessage(), args=None)
            self.write(["log", {key: value for key, value in fields.items() if _plain(value)}])


def _run_child(removal, spill, journal_file, stop_read, lock_pid):
    """Carry out the orphaned files' batches in the child, report, and end the process."""
    status = 1
    try:
        _end_with_the_parent(stop_read)
        _forget_inherited_connections()
        journal = Journal(journal_file)
        logging.Logger.handle = lambda logger, record: journal.log_record(logger, record)  # to the parent
        parent_result = removal.result
        result = CleanupResult(run_id=parent_result.run_id, dry_run=False)
        result.restorable = parent_result.restorable
        removal.result = result
        removal.item = journal.item
        removal.lock = ChildLock(stop_read, lock_pid, removal.options.using)
        removal.take_even_parts()
        report = {"raised": None, "message": ""}
        try:
            try:
                removal.remove_orphaned_files(spill)
            finally:
                removal.finish_batches()  # what is under way is carried out and counted
        except Exception as exc:
            raised = _error_name(exc)
            report = {
                "raised": raised,
                "message": str(exc) if raised in ERRORS else f"{type(exc).__name__}: {exc}",
            }
        for message in result.errors:
            journal.write(["error", message])
        report.update({name: getattr(result, name) for name in FIGURES})
        report.update(conditions=sorted(result.conditions), message=report["message"] or result.message)
        journal.write(["report", report])
        journal_file.flush()
        status = 0
    except BaseException:  # anything else: the parent reports an ending without a report
        logger.exception("The process removing the orphaned files failed")
    finally:
        os._exit(status)


def _end_with_the_parent(stop_read):
    """End the child at once, even within a batch, if the parent dies, as the parent's own threads would.

    A parent that dies closes its end of the pipe without a word. One that stops on purpose
    writes a byte first: the child then ends before its next batch (``ChildLock``), once what
    is under way is carried out and counted.
    """

    def watch():
        if not os.read(stop_read, 1):
            os._exit(1)

    threading.Thread(target=watch, name="files-process-parent", daemon=True).start()


def _forget_inherited_connections():
    """Leave the parent's database sessions to the parent: the child opens its own.

    Closing them here would end the parent's sessions; the child only drops its references and
    ends with ``os._exit()``, which runs no finaliser.
    """
    for connection in connections.all(initialized_only=True):
        _INHERITED.append(connection.connection)
        connection.connection = None


def _plain(value):
    return value is None or isinstance(value, str | int | float | bool)


def _error_name(exc):
    for name, kind in ERRORS.items():
        if isinstance(exc, kind):
            return name
    return "unexpected"


def _ended(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
