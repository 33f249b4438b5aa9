"""Storages that fail on purpose, to test the failure paths."""

from django.core.files.storage import FileSystemStorage


class FailingDeleteStorage(FileSystemStorage):
    """A local storage whose delete() always fails, as a read-only or broken disk would."""

    def delete(self, name):
        raise PermissionError(13, "Permission denied (simulated)", name)
