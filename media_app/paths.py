"""Rules for stored file names: sanitising uploads, refusing names that leave the storage."""

import os
import posixpath
import re
import unicodedata

from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename

UPLOADS_FOLDER = "uploads"
UPLOADS_PREFIX = UPLOADS_FOLDER + "/"
MAX_ORIGINAL_NAME_LENGTH = 100
FALLBACK_NAME = "file"
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def sanitise_filename(original_name):
    """Return a safe base name for an uploaded file: no folders, no control or shell characters."""
    base = unicodedata.normalize("NFC", str(original_name)).replace("\\", "/").rsplit("/", 1)[-1]
    # A leading dot would hide the file from listings; it is never part of a real photo name.
    base = base.strip().lstrip(".")
    try:
        base = get_valid_filename(base)
    except SuspiciousFileOperation:
        return FALLBACK_NAME
    stem, ext = os.path.splitext(base)
    ext = ext[:16]
    stem = stem[: MAX_ORIGINAL_NAME_LENGTH - len(ext)] or FALLBACK_NAME
    return f"{stem}{ext}"


def is_safe_name(name):
    """Return True if a stored name is relative and never climbs out of the storage root."""
    if not name or "\x00" in name:
        return False
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or WINDOWS_DRIVE.match(normalised):
        return False
    return ".." not in normalised.split("/")


def resolves_inside(storage, name):
    """Return True if the name is safe and, on a local disk, its folder really lies in the root.

    The second test catches a folder inside the root that is a symlink to somewhere else:
    deleting through it would touch a file outside the media root.
    """
    return InsideCheck(storage)(name)


class InsideCheck:
    """``resolves_inside`` for many names of one batch: each folder is resolved once."""

    def __init__(self, storage):
        self.storage = storage
        self.root = None
        self.folders = {}

    def __call__(self, name):
        if not is_safe_name(name):
            return False
        try:
            path = self.storage.path(name)
        except NotImplementedError:
            return True  # object storage: keys are plain strings, nothing to follow
        except SuspiciousFileOperation:
            return False
        folder = os.path.dirname(path)
        if folder not in self.folders:
            if self.root is None:
                self.root = os.path.realpath(self.storage.location)
            real = os.path.realpath(folder)
            self.folders[folder] = real == self.root or real.startswith(self.root + os.sep)
        return self.folders[folder]


def in_uploads(name):
    """Return True for a name the sweep may touch: safe, normalised, and under ``uploads/``."""
    if not name.startswith(UPLOADS_PREFIX):
        return False
    # Fast path for the millions of plain names; only these substrings can make one unsafe
    # or different from its normal form.
    if "/." not in name and "//" not in name and "\\" not in name and "\x00" not in name:
        return True
    return is_safe_name(name) and posixpath.normpath(name) == name
