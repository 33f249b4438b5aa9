"""What an upload may be: its type told by its content (not its name), and its size.

Used as a validator on ``Media.file``, so that admin forms and ``full_clean()`` enforce it;
``Media.objects.create()`` from code skips model validation, as Django always does. The size
is also enforced while a request streams in, by an upload handler.
"""

import io
import mimetypes
import os
import warnings

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.deconstruct import deconstructible
from PIL import Image, UnidentifiedImageError

from . import conf

PDF_MAGIC = b"%PDF-"
CONTENT_NOT_KEPT = "this upload was over the size limit; its content was not kept"
# Extensions accepted for each type; anything else (.html, .svg, .exe...) is refused even
# when the content would pass, so that a web server never serves a polyglot as something else.
EXTENSIONS = {
    "image/jpeg": {".jpg", ".jpeg"},
    "image/png": {".png"},
    "image/gif": {".gif"},
    "image/webp": {".webp"},
    "application/pdf": {".pdf"},
}


def detect_type(file):
    """Return the MIME type that the content of ``file`` shows, or None; leave its position alone."""
    position = file.tell()
    try:
        file.seek(0)
        if file.read(len(PDF_MAGIC)) == PDF_MAGIC:
            return "application/pdf"
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                image.verify()
                return Image.MIME.get(image.format)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ):
        return None
    finally:
        file.seek(position)


def describe_type(file, name):
    """Return the MIME type of a new file: from its content when known, else from its name."""
    return detect_type(file) or mimetypes.guess_type(name)[0] or ""


@deconstructible
class UploadValidator:
    """Refuse a new upload that is too large, or whose content is not an allowed type."""

    def __call__(self, value):
        if getattr(value, "_committed", True):
            return  # already stored: validated when it arrived
        limit = conf.upload_max_bytes()
        if value.size > limit:
            raise ValidationError(
                "This file is %(size)s; the limit is %(limit)s.",
                code="file_too_large",
                params={"size": filesizeformat(value.size), "limit": filesizeformat(limit)},
            )
        allowed = conf.upload_allowed_types()
        detected = detect_type(value.file)
        extension = os.path.splitext(value.name)[1].lower()
        if detected not in allowed or extension not in EXTENSIONS.get(detected, set()):
            raise ValidationError(
                "This file is not an allowed type. Allowed: %(allowed)s, with a matching extension "
                "(the content is checked, not only the name).",
                code="file_type_not_allowed",
                params={"allowed": ", ".join(sorted(allowed))},
            )

    def __eq__(self, other):
        return isinstance(other, UploadValidator)


validate_upload = UploadValidator()


class SizeLimitUploadHandler(FileUploadHandler):
    """Stop passing an uploaded file on once it grows past ``MEDIA_UPLOAD_MAX_BYTES``.

    First in ``FILE_UPLOAD_HANDLERS``: the handlers after it, which keep files in memory or in
    a temporary file, never receive a byte past the limit. The rest of the file is only
    counted, and the form gets an ``OversizedUpload`` of the true size, which the upload
    validator refuses with its usual message.
    """

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.limit = conf.upload_max_bytes()

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) <= self.limit:
            return raw_data
        if start <= self.limit:
            self._free_what_the_next_handlers_kept()
        return None

    def _free_what_the_next_handlers_kept(self):
        # Their part of the file would otherwise stay in memory or on disk until the request
        # is collected. Handlers keep the file they write as ``file``: Django's parser frees
        # them the same way when a file is skipped.
        handlers = list(self.request.upload_handlers)
        for handler in handlers[handlers.index(self) + 1 :]:
            if hasattr(handler, "file"):
                handler.file.close()

    def file_complete(self, file_size):
        if file_size <= self.limit:
            return None  # the next handler returns the file it kept
        return OversizedUpload(
            self.file_name, self.content_type, file_size, self.charset, self.content_type_extra
        )


class OversizedUpload(UploadedFile):
    """An upload stopped at the size limit: a name and a true size, and no content to store."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        super().__init__(_DiscardedContent(), name, content_type, size, charset, content_type_extra)


class _DiscardedContent(io.RawIOBase):
    """Fail any read, so that code saving an oversized upload without validation stores nothing."""

    def readinto(self, buffer):
        raise ValueError(CONTENT_NOT_KEPT)

    def seek(self, offset, whence=io.SEEK_SET):
        raise ValueError(CONTENT_NOT_KEPT)
