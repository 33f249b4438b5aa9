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
    """Return True if the name is safe and, on a local disk, its folder really lies where it may.

    The second test catches a folder that is a symlink to somewhere else: deleting through it
    would touch a file outside the media root. A name ``uploads/<type>/...`` may lie in the real
    folder of ``uploads/<type>``, which an operator may have moved to another disk and linked
    back (see ``UploadsLayout``); any other name must lie in the real media root.
    """
    return InsideCheck(storage)(name)


class InsideCheck:
    """``resolves_inside`` for many names of one batch: each folder is resolved once."""

    def __init__(self, storage):
        self.storage = storage
        self.layout = None
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
            if self.layout is None:
                self.layout = UploadsLayout(self.storage.location)
            base = self.layout.base_of(folder)
            self.folders[folder] = base is not None and is_within(self.layout.real(folder), base)
        return self.folders[folder]


class UploadsLayout:
    """Resolve, once each, the real folders of a local media root's ``uploads/`` and ``uploads/<type>``.

    An operator may make ``uploads/`` or an ``uploads/<type>`` a symlink to a folder on another
    disk: that folder is then the trusted base of the names below it. It is not trusted when one
    file would get two names: an ``uploads/<type>`` that resolves into ``uploads/`` (or holds it),
    or an ``uploads/`` that holds the media root itself.
    """

    def __init__(self, location):
        self.location = os.path.abspath(location)
        self.root = os.path.realpath(location)
        self.resolved = {}

    def real(self, path):
        """Return the real path of ``path``, resolving each path once."""
        if path not in self.resolved:
            self.resolved[path] = os.path.realpath(path)
        return self.resolved[path]

    def top(self):
        """Return the real folder of ``uploads/``, or None when it holds the media root."""
        real = self.real(os.path.join(self.location, UPLOADS_FOLDER))
        return None if is_within(self.root, real) else real

    def type_folder(self, entry):
        """Return the real folder of ``uploads/<entry>``, or None when names below it must be refused."""
        top = self.top()
        if top is None:
            return None
        real = self.real(os.path.join(self.location, UPLOADS_FOLDER, entry))
        if real == os.path.join(top, entry):
            return real  # a folder of its own, not a symlink
        if is_within(real, top) or is_within(top, real) or is_within(self.root, real):
            return None
        return real

    def base_of(self, folder):
        """Return the real folder that the files of ``folder`` (a path in the media root) must lie in."""
        parts = os.path.relpath(folder, self.location).split(os.sep)
        if parts[0] != UPLOADS_FOLDER:
            return self.root
        if len(parts) == 1:
            return self.top()
        return self.type_folder(parts[1])


def is_within(path, folder):
    """Return True if ``path`` is ``folder`` or lies below it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def is_layout_entry(name):
    """Return True for ``uploads`` and its direct entries (``uploads/<type>``): nothing removes them."""
    parts = name.rstrip("/").split("/")
    return parts[0] == UPLOADS_FOLDER and len(parts) <= 2


def in_uploads(name):
    """Return True for a name the sweep may touch: safe, normalised, and under ``uploads/``."""
    if not name.startswith(UPLOADS_PREFIX):
        return False
    # Fast path for the millions of plain names; only these substrings can make one unsafe
    # or different from its normal form.
    if "/." not in name and "//" not in name and "\\" not in name and "\x00" not in name:
        return True
    return is_safe_name(name) and posixpath.normpath(name) == name
