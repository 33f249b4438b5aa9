"""Rules for stored file names: sanitising uploads, refusing names that leave the storage."""

import math
import os
import posixpath
import re
import unicodedata

from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename

UPLOADS_FOLDER = "uploads"
UPLOADS_PREFIX = UPLOADS_FOLDER + "/"
FALLBACK_NAME = "file"
MAX_EXTENSION_LENGTH = 16
# One folder entry takes at most 255 bytes on Linux file systems (ext4, XFS, btrfs, ZFS), and
# 255 UTF-16 units on NTFS, which 255 bytes of UTF-8 never exceed.
COMPONENT_MAX_BYTES = 255
# An S3 object key, the storage's location prefix included, takes at most 1,024 bytes of UTF-8.
OBJECT_KEY_MAX_BYTES = 1024
# Storage.get_available_name() appends "_" and seven random characters when a name is taken.
COLLISION_SUFFIX_LENGTH = 8
# An emoji's skin tone belongs to the emoji before it; two regional indicators make one flag.
EMOJI_MODIFIERS = ("\U0001f3fb", "\U0001f3ff")
REGIONAL_INDICATORS = ("\U0001f1e6", "\U0001f1ff")
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def base_name(name):
    """Return the last component of an uploaded file's name, in NFC, without unprintable characters.

    Django's multipart parser drops the same characters, so that a name reads the same whether
    it came through a form or from code.
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return unicodedata.normalize("NFC", "".join(char for char in base if char.isprintable()))


def sanitise_filename(original_name, max_bytes=COMPONENT_MAX_BYTES, max_chars=COMPONENT_MAX_BYTES):
    """Return a safe base name for an uploaded file: no folders, no control or shell characters.

    Letters and digits of every script stay, exactly as the storage's ``get_valid_name()``
    keeps them; the name is cut to ``max_bytes`` of UTF-8 and ``max_chars`` characters,
    keeping its extension.
    """
    # A leading dot would hide the file from listings; it is never part of a real photo name.
    base = base_name(original_name).strip().lstrip(".")
    try:
        # Dropping characters can join two that NFC composes (Hangul jamo around a stray mark).
        base = unicodedata.normalize("NFC", get_valid_filename(base))
    except SuspiciousFileOperation:
        base = ""
    if not base or base.startswith("."):
        base = FALLBACK_NAME + base  # nothing was left before the extension
    stem, ext = os.path.splitext(base)
    return shorten(stem + ext[:MAX_EXTENSION_LENGTH], max_chars, max_bytes)


def shorten(name, max_chars, max_bytes=math.inf):
    """Return ``name`` cut to ``max_chars`` characters and ``max_bytes`` of UTF-8, keeping its extension.

    The cut falls between user-perceived characters: a letter keeps its combining marks, an
    emoji its skin tone, a flag both its halves.
    """
    if len(name) <= max_chars and len(name.encode()) <= max_bytes:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext) > max_chars or len(ext.encode()) > max_bytes:
        stem, ext = name, ""  # an extension that leaves no room is no extension
    max_chars -= len(ext)
    max_bytes -= len(ext.encode())
    kept = []
    for cluster in _clusters(stem):
        max_chars -= len(cluster)
        max_bytes -= len(cluster.encode())
        if max_chars < 0 or max_bytes < 0:
            break
        kept.append(cluster)
    return "".join(kept) + ext


def _clusters(text):
    """Yield the user-perceived characters of ``text``."""
    cluster = ""
    for char in text:
        if cluster and _continues(cluster, char):
            cluster += char
        else:
            if cluster:
                yield cluster
            cluster = char
    if cluster:
        yield cluster


def _continues(cluster, char):
    if unicodedata.category(char).startswith("M"):
        return True
    if EMOJI_MODIFIERS[0] <= char <= EMOJI_MODIFIERS[1]:
        return True
    first, last = REGIONAL_INDICATORS
    return len(cluster) == 1 and first <= cluster <= last and first <= char <= last


def name_room(prefix, storage, max_length):
    """Return ``(bytes, characters)`` left for a base name after ``prefix``, e.g. ``uploads/tours/<hex>-``.

    The stored name must fit its last component in one folder entry, the whole name in the
    FileField's ``max_length`` (characters) and, on object storage, the key with the storage's
    location before it; each with room for the suffix a taken name gets.
    """
    component = prefix.rsplit("/", 1)[-1]
    max_bytes = COMPONENT_MAX_BYTES - len(component.encode()) - COLLISION_SUFFIX_LENGTH
    key_prefix = object_key_prefix(storage)
    if key_prefix is not None:
        key_room = OBJECT_KEY_MAX_BYTES - len((key_prefix + prefix).encode()) - COLLISION_SUFFIX_LENGTH
        max_bytes = min(max_bytes, key_room)
    return max_bytes, max_length - len(prefix) - COLLISION_SUFFIX_LENGTH


def object_key_prefix(storage):
    """Return what an object storage puts before every name (its location and a slash), or None on a disk."""
    try:
        storage.path("")
    except NotImplementedError:
        location = str(getattr(storage, "location", "")).strip("/")
        return f"{location}/" if location else ""
    return None


def is_safe_name(name):
    """Return True if a stored name is relative and never climbs out of the storage root."""
    if not name or "\x00" in name:
        return False
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or WINDOWS_DRIVE.match(normalised):
        return False
    return ".." not in normalised.split("/")


class InsideCheck:
    """Tell whether names are safe and, on a local disk, lie where they may; resolve each folder once.

    The second test catches a folder that is a symlink to somewhere else: deleting through it
    would touch a file outside the media root. A name ``uploads/<type>/...`` may lie in the real
    folder of ``uploads/<type>``, which an operator may have moved to another disk and linked
    back (see ``UploadsLayout``); any other name must lie in the real media root.
    """

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
