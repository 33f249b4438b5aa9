import re

import pytest
from django.core.files.base import ContentFile

from media_app.models import Media
from tests import factories

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
    ("original", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path/photo.png", "photo.png"),
        ("C:\\Users\\nino\\My Photo.JPG", "My_Photo.JPG"),
        ("თბილისი ღამით.jpg", "თბილისი_ღამით.jpg"),
        ('quote\'s "and" $(rm -rf).jpg', "quotes_and_rm_-rf.jpg"),
        ("new\nline.jpg", "newline.jpg"),
        (".htaccess", "htaccess"),
        ("..", "file"),
    ],
)
def test_odd_original_names_are_sanitised_in_the_stored_name(original, stored):
    media = factories.media(factories.tour(), name=original)

    assert media.file.name.split("-", 1)[1] == stored
    assert media.file.name.startswith("uploads/tours/")
    assert media.original_name == original.replace("\\", "/").rsplit("/", 1)[-1]


def test_a_very_long_name_still_fits_the_column():
    media = factories.media(factories.tour(), name="x" * 400 + ".jpeg")

    assert len(media.file.name) <= Media._meta.get_field("file").max_length
    assert media.file.name.endswith("x.jpeg")


def test_str_is_the_original_name():
    assert str(factories.media(factories.guide(), name="portrait.jpg")) == "portrait.jpg"
