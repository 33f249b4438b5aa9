"""The normal cleanup path: a media row's file goes when the row goes, after the commit.

Deleting an owner cascades to its media rows through ``GenericRelation``, so the same
``post_delete`` handler covers owners deleted one by one, by ``QuerySet.delete()`` or by
the admin's "delete selected".
"""

import contextvars
from contextlib import contextmanager
from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from . import files

_caller_deletes_files = contextvars.ContextVar("caller_deletes_files", default=False)


@contextmanager
def files_deleted_by_caller():
    """Within this block, deleting media rows leaves their files to the caller (the sweep)."""
    token = _caller_deletes_files.set(True)
    try:
        yield
    finally:
        _caller_deletes_files.reset(token)


def _delete_on_commit(storage, name, using):
    transaction.on_commit(partial(files.delete_file, storage, name, using), using=using)


def remember_file_pre_save(sender, instance, raw, using, **kwargs):
    """Remember the stored file name before an update, so that a replaced file can go."""
    instance._stored_file_name = None
    if raw or instance._state.adding:
        return
    instance._stored_file_name = (
        sender._base_manager.using(using).filter(pk=instance.pk).values_list("file", flat=True).first()
    )


def delete_replaced_file_post_save(sender, instance, raw, using, **kwargs):
    """Delete the previous file after commit when the row now points at another one."""
    previous = getattr(instance, "_stored_file_name", None)
    if previous and previous != instance.file.name:
        _delete_on_commit(instance.file.storage, previous, using)


def delete_file_post_delete(sender, instance, using, **kwargs):
    """Delete the row's file after commit; a rollback keeps both."""
    if instance.file.name and not _caller_deletes_files.get():
        _delete_on_commit(instance.file.storage, instance.file.name, using)


def connect():
    """Connect the handlers to the Media model; called once from ``AppConfig.ready()``."""
    from .models import Media

    pre_save.connect(remember_file_pre_save, sender=Media, dispatch_uid="media_remember_file")
    post_save.connect(delete_replaced_file_post_save, sender=Media, dispatch_uid="media_delete_replaced_file")
    post_delete.connect(delete_file_post_delete, sender=Media, dispatch_uid="media_delete_file")
