import logging
import os
import re
import threading

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.db import connection, connections, models, transaction
from django.db.models.signals import pre_delete
from django.test.utils import CaptureQueriesContext

from media_app import files, signals
from media_app.models import Media
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stored(backend):
    """A tour with one media row, and the name of its file."""
    media = factories.media(factories.tour())
    return media, media.file.name


@pytest.fixture
def attachment_model():
    """Another model of the project with a FileField, created for one test and removed after."""

    class Attachment(models.Model):
        document = models.FileField(upload_to="uploads/attachments/")

        class Meta:
            app_label = "media_app"

    with connection.schema_editor() as editor:
        editor.create_model(Attachment)
    yield Attachment
    with connection.schema_editor() as editor:
        editor.delete_model(Attachment)
    del apps.all_models["media_app"]["attachment"]
    apps.clear_cache()


def test_deleting_a_row_deletes_its_file_only_after_commit(stored, backend):
    media, name = stored

    with transaction.atomic():
        media.delete()
        assert backend.exists(name), "the file went before the transaction committed"

    assert not backend.exists(name)


def test_a_rollback_keeps_row_and_file(stored, backend):
    media, name = stored
    pk = media.pk

    with pytest.raises(RuntimeError), transaction.atomic():
        media.delete()
        raise RuntimeError("the user's transaction fails")

    assert Media.objects.filter(pk=pk).exists()
    assert backend.exists(name)


def test_a_row_deleted_where_the_caller_deletes_files_leaves_its_file_to_the_caller(stored, backend):
    media, name = stored

    with transaction.atomic(), files.files_deleted_by_caller():
        media.delete()

    assert backend.exists(name), "the sweep deletes (or quarantines) the file itself"
    Media.objects.create(content_object=factories.tour(), file=name).delete()
    assert not backend.exists(name), "outside the block the signals delete files again"


def test_a_rolled_back_savepoint_keeps_the_file_though_the_outer_transaction_commits(stored, backend):
    media, name = stored

    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            Media.objects.get(pk=media.pk).delete()
            raise RuntimeError("the inner block fails")

    assert Media.objects.filter(pk=media.pk).exists()
    assert backend.exists(name)


@pytest.mark.parametrize("kind", sorted(factories.OWNERS))
def test_deleting_an_owner_deletes_its_media_and_files(kind, backend):
    owner = factories.OWNERS[kind]()
    names = [factories.media(owner, name=f"{n}.jpg").file.name for n in range(3)]
    bystander = factories.media(factories.OWNERS[kind]())

    owner.delete()

    assert not Media.objects.filter(object_id=owner.pk).exists()
    assert backend.missing(names) == names
    assert backend.exists(bystander.file.name)


@pytest.mark.parametrize("kind", sorted(factories.OWNERS))
def test_queryset_delete_of_owners_deletes_their_media_and_files(kind, backend):
    owners = [factories.OWNERS[kind]() for _ in range(3)]
    names = [factories.media(owner).file.name for owner in owners]

    type(owners[0]).objects.filter(pk__in=[owner.pk for owner in owners]).delete()

    assert not Media.objects.exists()
    assert backend.missing(names) == names


def test_an_owner_deleted_in_a_rolled_back_transaction_keeps_everything(stored, backend):
    media, name = stored

    with pytest.raises(RuntimeError), transaction.atomic():
        media.content_object.delete()
        raise RuntimeError

    assert Media.objects.filter(pk=media.pk).exists()
    assert backend.exists(name)


def test_replacing_the_file_deletes_the_previous_one_after_commit(stored, backend):
    media, old_name = stored

    with transaction.atomic():
        media.file = ContentFile(b"new photo", name="new.jpg")
        media.save()
        assert backend.exists(old_name)

    assert not backend.exists(old_name)
    assert backend.read(media.file.name) == b"new photo"
    assert media.original_name == "new.jpg"
    assert media.size == len(b"new photo")


def test_a_rolled_back_replacement_keeps_the_previous_file(stored, backend):
    media, old_name = stored

    with pytest.raises(RuntimeError), transaction.atomic():
        media.file = ContentFile(b"new photo", name="new.jpg")
        media.save()
        raise RuntimeError

    assert backend.exists(old_name)
    assert Media.objects.get(pk=media.pk).file.name == old_name


def test_saving_without_a_file_change_deletes_nothing(stored, backend):
    media, name = stored

    media.caption = "Narikala at dusk"
    media.save()
    Media.objects.get(pk=media.pk).save()

    assert backend.exists(name)


def test_a_file_shared_by_another_media_row_is_kept(stored, backend):
    media, name = stored
    other = Media.objects.create(content_object=factories.guide(), file=name)

    media.delete()

    assert backend.exists(name)
    other.delete()
    assert not backend.exists(name)


def test_a_file_referenced_by_another_filefield_of_the_project_is_kept(stored, backend, attachment_model):
    media, name = stored
    attachment_model.objects.create(document=name)

    media.delete()

    assert backend.exists(name)


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_name_outside_media_root_is_never_followed(where, outside_dir, caplog):
    media = factories.media(factories.tour())
    secret = outside_dir / "secret.txt"
    secret.write_text("keep me")
    name = "../outside/secret.txt" if where == "relative" else str(secret)
    Media.objects.filter(pk=media.pk).update(file=name)

    with caplog.at_level(logging.WARNING, logger="media_app"):
        Media.objects.get(pk=media.pk).delete()

    assert not Media.objects.filter(pk=media.pk).exists()
    assert secret.read_text() == "keep me"
    assert any(r.levelno == logging.WARNING and "outside" in r.getMessage() for r in caplog.records)


def test_a_symlinked_folder_leading_outside_is_never_followed(media_root, outside_dir, caplog):
    media = factories.media(factories.tour())
    secret = outside_dir / "secret.txt"
    secret.write_text("keep me")
    os.symlink(outside_dir, media_root / "uploads" / "tours" / "escape")
    Media.objects.filter(pk=media.pk).update(file="uploads/tours/escape/secret.txt")

    with caplog.at_level(logging.WARNING, logger="media_app"):
        Media.objects.get(pk=media.pk).delete()

    assert secret.exists()
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_a_storage_error_is_logged_and_does_not_break_the_delete(stored, backend, caplog):
    media, name = stored

    with backend.deletes_failing(), caplog.at_level(logging.ERROR, logger="media_app"):
        Media.objects.get(pk=media.pk).delete()

    assert not Media.objects.filter(pk=media.pk).exists()
    assert backend.exists(name), "the file stays for the sweep"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and re.search(backend.denial, errors[0].getMessage())
    assert errors[0].exc_info is None, "expected trouble is one line, not a traceback"


def test_a_row_whose_file_is_already_gone_deletes_quietly(stored, backend, caplog):
    media, name = stored
    backend.remove(name)

    with caplog.at_level(logging.DEBUG, logger="media_app"):
        media.delete()

    assert not Media.objects.filter(pk=media.pk).exists()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- rows loaded without their file name (only(), defer()) ---------------------------------------

LOADS = {
    "only": lambda pk: Media.objects.only("pk").get(pk=pk),
    "defer": lambda pk: Media.objects.defer("file").get(pk=pk),
    "only another field": lambda pk: Media.objects.only("caption").get(pk=pk),
}


@pytest.mark.parametrize("load", sorted(LOADS))
def test_a_row_loaded_without_its_file_name_is_deleted_with_its_file_after_commit(load, stored, backend):
    media, name = stored
    loaded = LOADS[load](media.pk)
    assert "file" in loaded.get_deferred_fields()

    with transaction.atomic():
        loaded.delete()
        assert backend.exists(name), "the file went before the transaction committed"

    assert not Media.objects.filter(pk=media.pk).exists()
    assert not backend.exists(name)


def test_a_rolled_back_delete_of_a_row_loaded_without_its_file_name_keeps_both(stored, backend):
    media, name = stored

    with pytest.raises(RuntimeError), transaction.atomic():
        Media.objects.only("pk").get(pk=media.pk).delete()
        raise RuntimeError("the user's transaction fails")

    assert Media.objects.filter(pk=media.pk).exists()
    assert backend.exists(name)


def deferred_delete_queries(rows):
    """Delete ``rows`` loaded without their file names; return the queries up to the commit."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        rows.only("pk").delete()
    return len(queries)


def test_a_queryset_delete_without_file_names_reads_them_in_one_query(backend):
    one, many = factories.tour(), factories.tour()
    names = [factories.media(one).file.name] + [factories.media(many).file.name for _ in range(4)]
    bystander = factories.media(factories.guide()).file.name

    assert deferred_delete_queries(Media.objects.filter(object_id=one.pk)) == deferred_delete_queries(
        Media.objects.filter(object_id=many.pk)
    )
    assert backend.missing(names) == names
    assert backend.exists(bystander)


def test_deleting_one_queryset_twice_deletes_the_files_of_both_times(backend):
    tour = factories.tour()
    rows = Media.objects.filter(object_id=tour.pk).only("pk")
    first = factories.media(tour).file.name
    rows.delete()
    second = factories.media(tour).file.name

    rows.delete()

    assert backend.missing([first, second]) == [first, second]


def test_an_owner_loaded_without_its_fields_deletes_its_media_files(backend):
    tour = factories.tour()
    names = [factories.media(tour).file.name for _ in range(2)]

    type(tour).objects.only("pk").get(pk=tour.pk).delete()

    assert not Media.objects.exists()
    assert backend.missing(names) == names


PLAIN_DELETES = {
    "row": lambda media: Media.objects.get(pk=media.pk).delete(),
    "queryset": lambda media: Media.objects.filter(pk=media.pk).delete(),
    "owner with its media": lambda media: type(media.content_object).objects.get(pk=media.object_id).delete(),
}


@pytest.mark.parametrize("kind", sorted(PLAIN_DELETES))
def test_a_delete_of_rows_with_their_file_names_costs_no_query_more(kind):
    def queries_of_a_delete():
        media = factories.media(factories.tour())
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            PLAIN_DELETES[kind](media)
        return len(queries)

    with_the_handler = queries_of_a_delete()
    pre_delete.disconnect(sender=Media, dispatch_uid="media_load_deferred_file")
    try:
        without_it = queries_of_a_delete()
    finally:
        signals.connect()

    assert with_the_handler == without_it


def delete_from_another_connection(pk):
    """Delete a media row in another thread, on that thread's own database connection."""

    def delete():
        try:
            Media.objects.filter(pk=pk).delete()
        finally:
            connections.close_all()

    thread = threading.Thread(target=delete)
    thread.start()
    thread.join()


@pytest.mark.parametrize("load", ["whole", "only", "defer"])
def test_a_row_another_connection_deleted_first_deletes_quietly_and_touches_nothing_in_use(load, backend):
    media = factories.media(factories.tour())
    name = media.file.name
    bystander = factories.media(factories.tour())
    loaded = Media.objects.get(pk=media.pk) if load == "whole" else LOADS[load](media.pk)
    delete_from_another_connection(media.pk)
    assert not backend.exists(name)
    # Meanwhile the file comes back under the same name, with a row of its own (as a restore does).
    backend.put(name, b"restored")
    revived = Media.objects.create(content_object=factories.guide(), file=name)

    loaded.delete()

    assert backend.read(name) == b"restored"
    assert Media.objects.filter(pk=revived.pk).exists()
    assert backend.exists(bystander.file.name)


def test_a_queryset_row_another_connection_deleted_during_the_delete_is_skipped(backend):
    tour = factories.tour()
    rows = [factories.media(tour) for _ in range(2)]
    deleted_first = []

    def delete_the_other_row_first(sender, instance, **kwargs):
        if not deleted_first:
            deleted_first.extend(row for row in rows if row.pk != instance.pk)
            delete_from_another_connection(deleted_first[0].pk)

    # Runs before the project's handler: between the collection of the rows and their delete.
    pre_delete.disconnect(sender=Media, dispatch_uid="media_load_deferred_file")
    pre_delete.connect(delete_the_other_row_first, sender=Media, dispatch_uid="test_delete_the_other_row")
    signals.connect()
    try:
        Media.objects.filter(object_id=tour.pk).only("pk").delete()
    finally:
        pre_delete.disconnect(sender=Media, dispatch_uid="test_delete_the_other_row")

    assert not Media.objects.exists()
    assert backend.names() == []
