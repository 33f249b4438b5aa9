import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.test import RequestFactory
from PIL import Image

from media_app.models import Media
from media_app.uploads import DiscardedUpload
from tests import factories

pytestmark = pytest.mark.django_db


def new_media(name, content):
    """A media row with a new, not yet stored file, as a form would build it."""
    return Media(content_object=factories.tour(), file=ContentFile(content, name=name))


@pytest.mark.parametrize(
    ("name", "content", "mime"),
    [
        ("photo.jpg", factories.image_bytes("JPEG"), "image/jpeg"),
        ("photo.JPEG", factories.image_bytes("JPEG"), "image/jpeg"),
        ("shot.png", factories.image_bytes("PNG"), "image/png"),
        ("anim.gif", factories.image_bytes("GIF"), "image/gif"),
        ("pic.webp", factories.image_bytes("WEBP"), "image/webp"),
        ("route.pdf", factories.PDF_BYTES, "application/pdf"),
    ],
)
def test_allowed_types_pass_and_are_described_by_content(name, content, mime, media_root):
    media = new_media(name, content)

    media.full_clean()
    media.save()

    assert media.mime_type == mime
    assert (media_root / media.file.name).read_bytes() == content


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("photo.jpg", b"<html><script>alert(1)</script></html>"),  # content is not an image
        ("page.html", factories.image_bytes("PNG")),  # a real image under a dangerous name
        ("photo.jpg", factories.image_bytes("PNG")),  # content and name disagree
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>'),  # not on the allow-list
        ("photo.bmp", factories.image_bytes("BMP")),  # an image type not on the allow-list
        ("doc.pdf", b"PDF-1.4 without the magic"),
        ("empty.jpg", b""),
    ],
)
def test_other_content_is_refused_with_a_clear_message(name, content, media_root):
    media = new_media(name, content)

    with pytest.raises(ValidationError) as refused:
        media.full_clean()

    assert "not an allowed type" in str(refused.value.message_dict["file"])
    assert not (media_root / "uploads").exists(), "nothing is written for a refused file"


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.MEDIA_UPLOAD_MAX_BYTES = 1024
    media = new_media("big.pdf", factories.PDF_BYTES + b"0" * 2048)

    with pytest.raises(ValidationError) as refused:
        media.full_clean()

    assert refused.value.message_dict["file"] == ["This file is 2.1\xa0KB; the limit is 1.0\xa0KB."]


def test_the_allow_list_is_a_setting(settings):
    settings.MEDIA_UPLOAD_ALLOWED_TYPES = ["application/pdf"]

    with pytest.raises(ValidationError):
        new_media("photo.jpg", factories.image_bytes()).full_clean()
    new_media("route.pdf", factories.PDF_BYTES).full_clean()


def test_a_decompression_bomb_is_refused():
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")  # 100 M pixels: above Pillow's bomb threshold
    bomb = buffer.getvalue()

    with pytest.raises(ValidationError):
        new_media("huge.png", bomb).full_clean()


def test_a_stored_file_is_not_validated_again(media_root):
    media = factories.media(factories.tour(), name="notes.jpg", content=b"stored before the rules")

    Media.objects.get(pk=media.pk).full_clean()


def test_code_can_still_create_media_without_model_validation():
    media = Media.objects.create(content_object=factories.guide(), file=ContentFile(b"text", name="a.txt"))

    assert media.mime_type == "text/plain"


# -- the size limit while the request streams in -------------------------------------------------


class RecordingUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler, noting how many bytes of each file reach it."""

    files = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.files.append(0)

    def receive_data_chunk(self, raw_data, start):
        self.files[-1] += len(raw_data)
        return super().receive_data_chunk(raw_data, start)


@pytest.fixture
def reaching_the_next_handler(settings, tmp_path):
    """Put a recording handler after the size limit; return how many bytes of each file it gets."""
    settings.FILE_UPLOAD_HANDLERS = [
        "media_app.uploads.SizeLimitUploadHandler",
        "tests.test_uploads.RecordingUploadHandler",
    ]
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    RecordingUploadHandler.files = []
    return RecordingUploadHandler.files


def uploaded(**files):
    """Post ``name=(file name, content)`` through Django's multipart parser; return request.FILES."""
    data = {field: SimpleUploadedFile(name, content) for field, (name, content) in files.items()}
    return RequestFactory().post("/", data).FILES


def test_a_file_within_the_limit_passes_on_whole(settings, reaching_the_next_handler):
    photo = factories.image_bytes()
    settings.MEDIA_UPLOAD_MAX_BYTES = len(photo)

    received = uploaded(file=("photo.jpg", photo))["file"]

    assert received.read() == photo
    assert reaching_the_next_handler == [len(photo)]


def test_a_file_past_the_limit_stops_there_and_reports_its_true_size(settings, reaching_the_next_handler):
    settings.MEDIA_UPLOAD_MAX_BYTES = 100_000
    big = factories.image_bytes() + b"0" * 300_000

    received = uploaded(file=("big.jpg", big))["file"]

    assert isinstance(received, DiscardedUpload)
    assert (received.name, received.size) == ("big.jpg", len(big))
    [kept] = reaching_the_next_handler
    assert 0 < kept <= 100_000, "nothing past the limit went on"
    with pytest.raises(ValidationError) as refused:
        Media(content_object=factories.tour(), file=received).full_clean()
    assert refused.value.message_dict["file"] == [
        f"This file is {filesizeformat(len(big))}; the limit is {filesizeformat(100_000)}."
    ]


def test_each_file_of_a_request_is_counted_on_its_own(settings, reaching_the_next_handler):
    photo = factories.image_bytes()
    settings.MEDIA_UPLOAD_MAX_BYTES = len(photo)

    files = uploaded(big=("big.jpg", photo + b"0"), small=("small.jpg", photo))

    assert isinstance(files["big"], DiscardedUpload)
    assert files["small"].read() == photo


@pytest.mark.parametrize("name", ["page.html", "photo", "photo." + "ჯ" * 80])
def test_nothing_of_a_file_under_a_name_no_allowed_type_has_goes_on(name, reaching_the_next_handler):
    received = uploaded(file=(name, factories.image_bytes()))["file"]

    assert isinstance(received, DiscardedUpload)
    assert reaching_the_next_handler == []
    with pytest.raises(ValidationError) as refused:
        Media(content_object=factories.tour(), file=received).full_clean()
    assert "not an allowed type" in str(refused.value.message_dict["file"])


def test_a_discarded_upload_saved_without_validation_stores_nothing(media_root):
    discarded = DiscardedUpload("big.jpg", "image/jpeg", 12_000_000, None)

    with pytest.raises(ValueError, match="content was not kept"):
        Media.objects.create(content_object=factories.tour(), file=discarded)

    assert not Media.objects.exists()
    assert list(media_root.iterdir()) == []
