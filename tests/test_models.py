import re
import unicodedata
import uuid

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media_app import paths
from media_app.models import Media
from tests import factories
from tests.backends import s3_options
from tests.conftest import S3_STORAGE

pytestmark = pytest.mark.django_db


def test_create_stores_the_file_and_describes_it(backend):
    tour = factories.tour()

    media = Media.objects.create(content_object=tour, file=ContentFile(b"12345", name="sunset.jpg"))

    assert re.fullmatch(r"uploads/tours/[0-9a-f]{16}-sunset\.jpg", media.file.name)
    assert backend.read(media.file.name) == b"12345"
    assert media.size == 5
    assert media.original_name == "sunset.jpg"
    assert media.mime_type == "image/jpeg"
    assert list(tour.media.all()) == [media]
    assert media.content_object == tour


@pytest.mark.parametrize("folder", sorted(factories.OWNERS))
def test_each_owner_type_has_its_plural_folder(folder):
    owner = factories.OWNERS[folder]()

    media = factories.media(owner, name="doc.pdf")

    assert media.file.name.startswith(f"uploads/{folder}/")
    assert list(owner.media.all()) == [media]
    assert media.mime_type == "application/pdf"


@pytest.mark.parametrize(
    ("original", "stored", "kept"),
    [
        ("../../etc/passwd", "passwd", "passwd"),
        ("/abs/path/photo.png", "photo.png", "photo.png"),
        ("C:\\Users\\nino\\My Photo.JPG", "My_Photo.JPG", "My Photo.JPG"),
        ("თბილისი ღამით.jpg", "თბილისი_ღამით.jpg", "თბილისი ღამით.jpg"),
        ('quote\'s "and" $(rm -rf).jpg', "quotes_and_rm_-rf.jpg", 'quote\'s "and" $(rm -rf).jpg'),
        # Unprintable characters go from both names, as Django's multipart parser drops them.
        ("new\nline.jpg", "newline.jpg", "newline.jpg"),
        ("Ё\x00лка\u202egpj.exe", "Ёлкаgpj.exe", "Ёлкаgpj.exe"),
        (".htaccess", "htaccess", ".htaccess"),
        ("..", "file", ".."),
    ],
)
def test_odd_original_names_are_sanitised_in_the_stored_name(original, stored, kept):
    media = factories.media(factories.tour(), name=original)

    assert media.file.name.split("-", 1)[1] == stored
    assert media.file.name.startswith("uploads/tours/")
    assert Media.objects.get(pk=media.pk).original_name == kept


def test_a_very_long_name_still_fits_the_column():
    media = factories.media(factories.tour(), name="x" * 400 + ".jpeg")

    field = Media._meta.get_field("file")
    assert len(media.file.name) == field.max_length - paths.COLLISION_SUFFIX_LENGTH
    assert media.file.name.endswith("x.jpeg")


# Names in several scripts, with what the stored name keeps of each: no more than 255 bytes
# less the suffix of a taken name (247) for <16 hex>-<name>, that is 230 bytes for the name.
NFD_SENT = unicodedata.normalize("NFD", "Ёлка_в_Тбилиси_" * 12 + ".jpg")
SCRIPTS = {
    "georgian": ("ა" * 98 + ".jpg", "ა" * 75 + ".jpg"),
    "russian": (
        "Вид_на_Нарикалу_с_канатной_дороги_" * 7 + ".jpg",
        "Вид_на_Нарикалу_с_канатной_дороги_" * 3 + "Вид_на_Нарикалу_с_кана.jpg",
    ),
    "emoji": ("🌄🇬🇪👍🏽" * 30 + ".jpg", "file.jpg"),
    "combining": ("q\u0323\u0307" * 80 + ".jpg", "q" * 80 + ".jpg"),
    "nfd": (NFD_SENT, "Ёлка_в_Тбилиси_" * 8 + "Ёлка_.jpg"),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_names_in_any_script_are_stored_within_the_file_systems_limits(script, backend):
    sent, stored = SCRIPTS[script]
    content = f"photo named in {script}".encode()

    media = Media.objects.create(content_object=factories.tour(), file=ContentFile(content, name=sent))

    folder, component = media.file.name.rsplit("/", 1)
    assert folder == "uploads/tours"
    assert re.fullmatch(r"[0-9a-f]{16}", component[:16]) and component[16:] == "-" + stored
    assert len(component.encode()) <= 255 - paths.COLLISION_SUFFIX_LENGTH
    assert backend.names() == [media.file.name]
    assert backend.read(media.file.name) == content
    assert Media.objects.get(pk=media.pk).original_name == unicodedata.normalize("NFC", sent)


def test_a_taken_name_still_fits_with_the_suffix_the_storage_adds(backend):
    media = Media.objects.create(
        content_object=factories.tour(), file=ContentFile(b"first", name=SCRIPTS["georgian"][0])
    )

    again = default_storage.save(media.file.name, ContentFile(b"second"), max_length=255)

    assert again != media.file.name and len(again.rsplit("/", 1)[1].encode()) <= 255
    assert backend.read(again) == b"second"


def test_a_long_key_prefix_on_s3_still_leaves_a_key_within_1024_bytes(s3_backend, s3_server, settings):
    location = "/".join(["ქალაქი"] * 45)  # 854 bytes
    options = s3_options(s3_server, s3_backend.bucket, location=location)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": S3_STORAGE, "OPTIONS": options}}

    media = Media.objects.create(
        content_object=factories.tour(), file=ContentFile(b"photo", name=SCRIPTS["georgian"][0])
    )

    [key] = s3_backend.names()
    assert key == f"{location}/{media.file.name}"
    room = 1024 - paths.COLLISION_SUFFIX_LENGTH
    assert room - 3 < len(key.encode()) <= room, "cut to the key's limit, no more than a letter short"
    assert s3_backend.read(media.file.name) == b"photo"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("ა" * 400 + ".jpg", "ა" * 251 + ".jpg"),
        ("q\u0323\u0307" * 100 + ".jpg", "q\u0323\u0307" * 83 + ".jpg"),
        ("🇬🇪" * 200 + ".jpg", "🇬🇪" * 125 + ".jpg"),
    ],
)
def test_an_original_name_longer_than_the_column_is_cut_between_characters(sent, kept):
    media = Media.objects.create(content_object=factories.tour(), file=ContentFile(b"x", name=sent))

    assert Media.objects.get(pk=media.pk).original_name == kept
    assert len(kept) <= Media._meta.get_field("original_name").max_length


def test_str_is_the_original_name():
    assert str(factories.media(factories.guide(), name="portrait.jpg")) == "portrait.jpg"


# -- Media.objects.orphaned(): the rows whose owner is gone ----------------------------------------


@pytest.fixture
def owners_live_and_gone():
    """Per owner type a live row and an orphaned one; rows of two stale types (no model; no UUID key)."""
    live, orphaned = {}, {}
    for kind, make in factories.OWNERS.items():
        live[kind] = factories.media(make())
        gone = make()
        orphaned[kind] = factories.media(gone)
        factories.delete_behind_the_orms_back(gone)
    retired = ContentType.objects.create(app_label="retired_app", model="ghost")
    stale = {
        Media.objects.create(content_type=content_type, object_id=uuid.uuid4(), file="uploads/other/x.jpg")
        for content_type in (retired, ContentType.objects.get_for_model(Group))
    }
    return live, orphaned, stale


def test_orphaned_selects_the_rows_whose_owner_is_gone_of_every_type(owners_live_and_gone):
    _, orphaned, _ = owners_live_and_gone

    assert set(Media.objects.orphaned()) == set(orphaned.values())


def test_not_orphaned_is_every_other_row_those_of_stale_types_included(owners_live_and_gone):
    live, _, stale = owners_live_and_gone

    assert set(Media.objects.not_orphaned()) == {*live.values(), *stale}


def test_orphaned_keeps_the_filters_before_it(owners_live_and_gone):
    live, orphaned, _ = owners_live_and_gone
    rows = Media.objects.filter(pk__in=[live["tours"].pk, orphaned["tours"].pk, orphaned["guides"].pk])

    assert set(rows.exclude(pk=orphaned["guides"].pk).orphaned()) == {orphaned["tours"]}


def test_owner_types_tell_live_types_from_stale_ones_and_orphaned_takes_a_few(owners_live_and_gone):
    _, orphaned, stale = owners_live_and_gone

    live_types, stale_types = Media.objects.owner_types()

    assert sorted(content_type.model for content_type, _ in live_types) == [
        "company",
        "driver",
        "guide",
        "tour",
        "user",
    ]
    assert set(stale_types) == {row.content_type for row in stale}
    tours = [(content_type, model) for content_type, model in live_types if content_type.model == "tour"]
    assert list(Media.objects.orphaned(tours)) == [orphaned["tours"]]


def test_orphaned_instances_are_the_rows_orphaned_selects_found_by_owner_lookups(owners_live_and_gone):
    live, orphaned, stale = owners_live_and_gone
    live_types, _ = Media.objects.owner_types()
    selection = Media.objects.filter(pk__in=[row.pk for row in [*live.values(), *orphaned.values(), *stale]])

    found = selection.orphaned_instances(live_types)

    assert set(found) == set(selection.orphaned(live_types)) == set(orphaned.values())
    assert all(isinstance(row, Media) and row.file.name for row in found), "whole rows, for the manifest"
    tours = [(content_type, model) for content_type, model in live_types if content_type.model == "tour"]
    assert selection.orphaned_instances(tours) == [orphaned["tours"]]
    with CaptureQueriesContext(connection) as queries:
        Media.objects.filter(pk__in=[orphaned["tours"].pk, live["guides"].pk]).orphaned_instances(live_types)
    assert len(queries) == 3, "the rows, then one lookup per owner type among them"
