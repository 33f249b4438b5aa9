"""Delete stored files the safe way: never one in use, never outside the storage, never loudly."""

import logging

from . import paths, references

logger = logging.getLogger(__name__)


def delete_file(storage, name, using):
    """Delete ``name`` from ``storage`` unless a row references it or it is not the app's to delete.

    Not the app's: a name that leads outside the storage, and ``uploads/`` or a direct entry
    of it (the operator's folders, perhaps symlinks to another disk). Return True when the file
    was deleted (or was already gone). Errors are logged at ERROR and swallowed: the user's
    delete has committed, and the sweep retries the file.
    """
    if paths.is_layout_entry(name):
        logger.warning("Not deleting %r: uploads/ and its direct entries are never removed", name)
        return False
    if not paths.InsideCheck(storage)(name):
        logger.warning("Not deleting %r: the name points outside the media storage", name)
        return False
    if references.referenced_names([name], using):
        logger.info("Keeping %r: another row still references it", name)
        return False
    try:
        storage.delete(name)
    except Exception as exc:  # any storage backend, any failure: the sweep will retry
        logger.error(
            "Could not delete %r (%s: %s); the cleanup sweep will retry", name, type(exc).__name__, exc
        )
        return False
    logger.info("Deleted %r", name)
    return True
