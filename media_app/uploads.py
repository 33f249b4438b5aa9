"""What an upload may be: its type told by its content (not its name), and its size.

Used as a validator on ``Media.file``, so that admin forms and ``full_clean()`` enforce it;
``Media.objects.create()`` from code skips model validation, as Django always does. While a
request streams in, an upload handler keeps nothing past the size limit, and nothing of a file
under a name that no allowed type has.
"""

import io
import mimetypes
import os
import warnings

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.template.defaultfilters import filesizeformat
from django.utils.deconstruct import deconstructible
from PIL import Image, UnidentifiedImageError

from . import conf
from .upload_types import EXTENSIONS

PDF_MAGIC = b"%PDF-"
CONTENT_NOT_KEPT = "this upload was refused while it streamed in; its content was not kept"


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


def has_allowed_extension(name):
    """Return True if the name ends with an extension of one of the allowed types."""
    extension = os.path.splitext(name)[1].lower()
    return any(extension in EXTENSIONS.get(mime, ()) for mime in conf.upload_allowed_types())


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
        # The name first: the content of a file that no allowed type's name fits was not kept.
        detected = detect_type(value.file) if has_allowed_extension(value.name) else None
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
    """Keep nothing of an upload past ``MEDIA_UPLOAD_MAX_BYTES``, nor of one the validator refuses by name.

    First in ``FILE_UPLOAD_HANDLERS``: the handlers after it, which keep files in memory or in
    a temporary file, never receive a byte past the limit. The form then gets a
    ``DiscardedUpload`` of the true size, which the upload validator refuses with its usual
    message.
    """

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.limit = conf.upload_max_bytes()
        self.discarded = not has_allowed_extension(self.file_name)
        if self.discarded:
            # The handlers after this one never see the file: Django's temporary file, named
            # with the upload's extension, would even fail on a long one.
            raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if not self.discarded and start + len(raw_data) > self.limit:
            self.discarded = True
            self._free_what_the_next_handlers_kept()
        return None if self.discarded else raw_data

    def _free_what_the_next_handlers_kept(self):
        # Their part of the file would otherwise stay in memory or on disk until the request
        # is collected. Handlers keep the file they write as ``file``: Django's parser frees
        # them the same way when a file is skipped.
        handlers = list(self.request.upload_handlers)
        for handler in handlers[handlers.index(self) + 1 :]:
            if hasattr(handler, "file"):
                handler.file.close()

    def file_complete(self, file_size):
        if not self.discarded:
            return None  # the next handler returns the file it kept
        return DiscardedUpload(
            self.file_name, self.content_type, file_size, self.charset, self.content_type_extra
        )


class DiscardedUpload(UploadedFile):
    """An upload refused while it streamed in: a name and a true size, and no content to store."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        super().__init__(_DiscardedContent(), name, content_type, size, charset, content_type_extra)


class _DiscardedContent(io.RawIOBase):
    """Fail any read, so that code saving a discarded upload without validation stores nothing."""

    def readinto(self, buffer):
        raise ValueError(CONTENT_NOT_KEPT)

    def seek(self, offset, whence=io.SEEK_SET):
        raise ValueError(CONTENT_NOT_KEPT)
