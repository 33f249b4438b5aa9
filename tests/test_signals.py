import logging
import os

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.db import connection, models, transaction

from media_app.models import Media
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stored(media_root):
    """A tour with one media row and the path of its file."""
    media = factories.media(factories.tour())
    return media, media_root / media.file.name


@pytest.fixture
def failing_storage(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "tests.storages.FailingDeleteStorage"}}


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


def test_deleting_a_row_deletes_its_file_only_after_commit(stored):
    media, path = stored

    with transaction.atomic():
        media.delete()
        assert path.exists(), "the file went before the transaction committed"

    assert not path.exists()


def test_a_rollback_keeps_row_and_file(stored):
    media, path = stored
    pk = media.pk

    with pytest.raises(RuntimeError), transaction.atomic():
        media.delete()
        raise RuntimeError("the user's transaction fails")

    assert Media.objects.filter(pk=pk).exists()
    assert path.exists()


def test_a_rolled_back_savepoint_keeps_the_file_though_the_outer_transaction_commits(stored):
    media, path = stored

    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            Media.objects.get(pk=media.pk).delete()
            raise RuntimeError("the inner block fails")

    assert Media.objects.filter(pk=media.pk).exists()
    assert path.exists()


@pytest.mark.parametrize("kind", sorted(factories.OWNERS))
def test_deleting_an_owner_deletes_its_media_and_files(kind, media_root):
    owner = factories.OWNERS[kind]()
    paths = [media_root / factories.media(owner, name=f"{n}.jpg").file.name for n in range(3)]
    bystander = factories.media(factories.OWNERS[kind]())

    owner.delete()

    assert not Media.objects.filter(object_id=owner.pk).exists()
    assert not any(path.exists() for path in paths)
    assert (media_root / bystander.file.name).exists()


@pytest.mark.parametrize("kind", sorted(factories.OWNERS))
def test_queryset_delete_of_owners_deletes_their_media_and_files(kind, media_root):
    owners = [factories.OWNERS[kind]() for _ in range(3)]
    paths = [media_root / factories.media(owner).file.name for owner in owners]

    type(owners[0]).objects.filter(pk__in=[owner.pk for owner in owners]).delete()

    assert not Media.objects.exists()
    assert not any(path.exists() for path in paths)


def test_an_owner_deleted_in_a_rolled_back_transaction_keeps_everything(stored):
    media, path = stored

    with pytest.raises(RuntimeError), transaction.atomic():
        media.content_object.delete()
        raise RuntimeError

    assert Media.objects.filter(pk=media.pk).exists()
    assert path.exists()


def test_replacing_the_file_deletes_the_previous_one_after_commit(stored, media_root):
    media, old_path = stored

    with transaction.atomic():
        media.file = ContentFile(b"new photo", name="new.jpg")
        media.save()
        assert old_path.exists()

    assert not old_path.exists()
    assert (media_root / media.file.name).read_bytes() == b"new photo"
    assert media.original_name == "new.jpg"
    assert media.size == len(b"new photo")


def test_a_rolled_back_replacement_keeps_the_previous_file(stored):
    media, old_path = stored

    with pytest.raises(RuntimeError), transaction.atomic():
        media.file = ContentFile(b"new photo", name="new.jpg")
        media.save()
        raise RuntimeError

    assert old_path.exists()
    assert Media.objects.get(pk=media.pk).file.name == str(old_path.relative_to(old_path.parents[2]))


def test_saving_without_a_file_change_deletes_nothing(stored):
    media, path = stored

    media.caption = "Narikala at dusk"
    media.save()
    Media.objects.get(pk=media.pk).save()

    assert path.exists()


def test_a_file_shared_by_another_media_row_is_kept(stored):
    media, path = stored
    other = Media.objects.create(content_object=factories.guide(), file=media.file.name)

    media.delete()

    assert path.exists()
    other.delete()
    assert not path.exists()


def test_a_file_referenced_by_another_filefield_of_the_project_is_kept(stored, attachment_model):
    media, path = stored
    attachment_model.objects.create(document=media.file.name)

    media.delete()

    assert path.exists()


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_name_outside_media_root_is_never_followed(where, stored, outside_dir, caplog):
    media, _ = stored
    secret = outside_dir / "secret.txt"
    secret.write_text("keep me")
    name = "../outside/secret.txt" if where == "relative" else str(secret)
    Media.objects.filter(pk=media.pk).update(file=name)

    with caplog.at_level(logging.WARNING, logger="media_app"):
        Media.objects.get(pk=media.pk).delete()

    assert not Media.objects.filter(pk=media.pk).exists()
    assert secret.read_text() == "keep me"
    assert any(r.levelno == logging.WARNING and "outside" in r.getMessage() for r in caplog.records)


def test_a_symlinked_folder_leading_outside_is_never_followed(stored, media_root, outside_dir, caplog):
    media, _ = stored
    secret = outside_dir / "secret.txt"
    secret.write_text("keep me")
    os.symlink(outside_dir, media_root / "uploads" / "escape")
    Media.objects.filter(pk=media.pk).update(file="uploads/escape/secret.txt")

    with caplog.at_level(logging.WARNING, logger="media_app"):
        Media.objects.get(pk=media.pk).delete()

    assert secret.exists()
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_a_storage_error_is_logged_and_does_not_break_the_delete(failing_storage, caplog):
    media = factories.media(factories.tour())
    path = os.path.join(media.file.storage.location, media.file.name)

    with caplog.at_level(logging.ERROR, logger="media_app"):
        media.delete()

    assert not Media.objects.filter(pk=media.pk).exists()
    assert os.path.exists(path), "the file stays for the sweep"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "Permission denied" in errors[0].getMessage()
    assert errors[0].exc_info is None, "expected trouble is one line, not a traceback"


def test_a_row_whose_file_is_already_gone_deletes_quietly(stored, caplog):
    media, path = stored
    path.unlink()

    with caplog.at_level(logging.DEBUG, logger="media_app"):
        media.delete()

    assert not Media.objects.filter(pk=media.pk).exists()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
