"""What an upload may be: its type told by its content (not its name), and its size.

Used as a validator on ``Media.file``, so that admin forms and ``full_clean()`` enforce it;
``Media.objects.create()`` from code skips model validation, as Django always does.
"""

import mimetypes
import os
import warnings

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.deconstruct import deconstructible
from PIL import Image, UnidentifiedImageError

from . import conf
from .upload_types import EXTENSIONS

PDF_MAGIC = b"%PDF-"


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
