"""Storages that fail on purpose, to test the failure paths."""

import os
import re

from django.core.files.storage import FileSystemStorage


class FailingDeleteStorage(FileSystemStorage):
    """A local storage whose delete() always fails, as a read-only or broken disk would."""

    def delete(self, name):
        raise PermissionError(13, "Permission denied (simulated)", name)


class FailingExistsStorage(FileSystemStorage):
    """A local storage that cannot say whether a file exists, as a bucket out of reach cannot.

    It raises what botocore raises there: an error that is not an ``OSError``.
    """

    def exists(self, name):
        raise RuntimeError("the storage does not answer (simulated)")


class FaultyStorage(FileSystemStorage):
    """A local storage that stalls the sweep at one file, or refuses some deletes, as a test directs.

    The sweep asks for a file's path just before it deletes the file or moves it to the
    quarantine (to refuse a path that leads outside), so stalling in ``path(stall_at)`` stops
    it at a known point of its removal phase: the storage writes a line to the file descriptor
    ``stall_fds[0]``, then waits until the test writes to (or closes) ``stall_fds[1]``; a test
    may kill the process there. ``fail_deletes`` is a regular expression: ``delete()`` of a
    name it matches raises PermissionError, as a disk refusing a delete would.
    """

    def __init__(self, stall_at="", stall_fds="", fail_deletes="", **kwargs):
        super().__init__(**kwargs)
        self.stall_at = stall_at
        self.stall_fds = [int(fd) for fd in stall_fds.split(",")] if stall_fds else []
        self.fail_deletes = re.compile(fail_deletes) if fail_deletes else None

    def path(self, name):
        if self.stall_at and name == self.stall_at:
            self.stall_at = ""
            ready, release = self.stall_fds
            os.write(ready, f"stalled at {name}\n".encode())
            os.read(release, 1)
        return super().path(name)

    def delete(self, name):
        if self.fail_deletes and self.fail_deletes.search(name):
            raise PermissionError(13, "Permission denied (simulated)", name)
        super().delete(name)
