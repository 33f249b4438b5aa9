"""Delete stored files the safe way: never one in use, never outside the storage, never loudly."""

import contextvars
import logging
from contextlib import contextmanager

from . import paths, references

logger = logging.getLogger(__name__)

_caller_deletes_files = contextvars.ContextVar("caller_deletes_files", default=False)


@contextmanager
def files_deleted_by_caller():
    """Within this block, deleting media rows leaves their files to the caller (the sweep)."""
    token = _caller_deletes_files.set(True)
    try:
        yield
    finally:
        _caller_deletes_files.reset(token)


def caller_deletes_files():
    """Return True inside ``files_deleted_by_caller()``: a deleted row's file is not for the signals."""
    return _caller_deletes_files.get()


def delete_file(storage, name, using):
    """Delete ``name`` from ``storage`` unless a row references it or it is not the app's to delete.

    Not the app's: a name that leads outside the storage, and ``uploads/`` or a direct entry
    of it (the operator's folders, perhaps symlinks to another disk). Errors are logged at ERROR
    and swallowed: the user's delete has committed, and the sweep retries the file.
    """
    if paths.is_layout_entry(name):
        logger.warning("Not deleting %r: uploads/ and its direct entries are never removed", name)
        return
    if not paths.InsideCheck(storage)(name):
        logger.warning("Not deleting %r: the name points outside the media storage", name)
        return
    if references.referenced_names([name], using):
        logger.info("Keeping %r: another row still references it", name)
        return
    try:
        storage.delete(name)
    except Exception as exc:  # any storage backend, any failure: the sweep will retry
        logger.error(
            "Could not delete %r (%s: %s); the cleanup sweep will retry", name, type(exc).__name__, exc
        )
        return
    logger.info("Deleted %r", name)
