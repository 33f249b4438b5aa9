"""One sweep at a time: a PostgreSQL advisory lock, or an OS file lock next to a SQLite file.

On PostgreSQL the lock is ``pg_try_advisory_lock(ADVISORY_LOCK_KEY)``, held on a connection of
its own, so it covers every host that shares the database and dies with the process. Anything
that deletes media in bulk (the sweep, a restore) takes it.
"""

import fcntl
import hashlib
import logging
import os
import tempfile
from contextlib import contextmanager

from django.db import connections

logger = logging.getLogger(__name__)

# The bytes "mediacln" read as a big-endian signed 64-bit integer: 7882817126550170734.
ADVISORY_LOCK_KEY = int.from_bytes(b"mediacln", "big", signed=True)


LOST = "the database session holding the sweep's lock was lost; stopped before going on"


class LockHeld(Exception):
    """Another run holds the lock: the operation was not started."""


class LockLost(Exception):
    """The lock's own database session went away: another run may hold the lock now."""


class Held:
    """The outcome of taking the lock: true when taken; ``check()`` before each step that deletes."""

    def __init__(self, acquired, session=None):
        self.acquired = acquired
        self.session = session

    def __bool__(self):
        return self.acquired

    def check(self):
        """Raise ``LockLost`` if the session that holds the lock has died since it was taken.

        An advisory lock lives as long as its session: if that session was terminated, or
        dropped as idle by a proxy or ``idle_session_timeout``, another run can take the lock
        while this one goes on deleting. A file lock cannot be lost while its process lives.
        """
        if self.session is not None and not self.session.is_usable():
            raise LockLost(LOST)

    def session_pid(self):
        """Return the server process id of the advisory lock's session (for ``held_by()``)."""
        with self.session.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]


def held_by(using, session_pid):
    """Raise ``LockLost`` unless the session ``session_pid`` still holds the advisory lock.

    For a process that shares the run's lock without its session (``files_process.py``): asked
    on that process's own connection ``using``, as ``pg_locks`` shows it.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s"
            " AND ((classid::bigint << 32) | objid::bigint) = %s)",
            [session_pid, ADVISORY_LOCK_KEY],
        )
        if not cursor.fetchone()[0]:
            raise LockLost(LOST)


@contextmanager
def cleanup_lock(using):
    """Hold the sweep's lock for the block; yield a ``Held``, false at once when another run holds it."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with _advisory_lock(using) as held:
            yield held
    else:
        with _file_lock(lock_file_path(connection.settings_dict["NAME"])) as acquired:
            yield Held(acquired)


def lock_file_path(database_name):
    """Return the lock file: next to a database file, or in the temporary folder otherwise."""
    name = str(database_name)
    if name and name != ":memory:" and not name.startswith("file:"):
        return f"{name}.cleanup.lock"
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"media-cleanup-{digest}.lock")


@contextmanager
def _advisory_lock(using):
    lock_connection = connections.create_connection(using)
    acquired = False
    try:
        with lock_connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            acquired = cursor.fetchone()[0]
        yield Held(acquired, lock_connection)
    finally:
        try:
            if acquired and lock_connection.is_usable():
                with lock_connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        finally:
            lock_connection.close()  # closing the session releases the lock in any case


@contextmanager
def _file_lock(path):
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
