"""The normal cleanup path: a media row's file goes when the row goes, after the commit.

Deleting an owner cascades to its media rows through ``GenericRelation``, so the same
``post_delete`` handler covers owners deleted one by one, by ``QuerySet.delete()`` or by
the admin's "delete selected". Rows loaded with ``only()`` or ``defer()`` have their file
name read before the delete, while their row still exists.
"""

import weakref
from functools import partial

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from . import files

# The file names of a QuerySet.delete() whose rows came without them, read in one query at its
# first pre_delete signal and each taken once; a row missing from them reads them again.
_names_by_origin = weakref.WeakKeyDictionary()


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


def load_deferred_file_pre_delete(sender, instance, using, origin=None, **kwargs):
    """Read a deferred file name while the row still exists, so that the delete never reloads it.

    Django would reload it from a row already gone, raise ``DoesNotExist`` and roll the whole
    delete back. The rows of a ``QuerySet.delete()`` are read in one query; a row that another
    connection deleted first has no file left to delete.
    """
    if "file" not in instance.get_deferred_fields():
        return
    if isinstance(origin, QuerySet) and origin.model is sender:
        names = _names_by_origin.get(origin)
        if names is None or instance.pk not in names:
            names = _names_by_origin[origin] = dict(origin.using(using).values_list("pk", "file"))
        instance.file = names.pop(instance.pk, "")
    else:
        rows = sender._base_manager.using(using).filter(pk=instance.pk)
        instance.file = rows.values_list("file", flat=True).first() or ""


def delete_file_post_delete(sender, instance, using, **kwargs):
    """Delete the row's file after commit; a rollback keeps both."""
    if instance.file.name and not files.caller_deletes_files():
        _delete_on_commit(instance.file.storage, instance.file.name, using)


def connect():
    """Connect the handlers to the Media model; called once from ``AppConfig.ready()``."""
    from .models import Media

    pre_save.connect(remember_file_pre_save, sender=Media, dispatch_uid="media_remember_file")
    post_save.connect(delete_replaced_file_post_save, sender=Media, dispatch_uid="media_delete_replaced_file")
    pre_delete.connect(load_deferred_file_pre_delete, sender=Media, dispatch_uid="media_load_deferred_file")
    post_delete.connect(delete_file_post_delete, sender=Media, dispatch_uid="media_delete_file")
