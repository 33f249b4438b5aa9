"""The storage backends of the sweep, and the one place that knows which serves which storage.

``backend_for(storage)`` returns the ``Backend`` of a storage: its walker, its quarantine and
its marker store (the protocols are in ``base.py``). Local files (``FileSystemStorage``) are
served by ``filesystem.py`` and ``filesystem_quarantine.py``, S3 (django-storages'
``S3Storage``) by ``s3.py`` and ``s3_quarantine.py``. Any other storage is refused with
``UnsupportedStorage`` before anything is touched.
"""

import dataclasses
import sys
from collections.abc import Callable

from django.core.files.storage import FileSystemStorage, default_storage

from ... import conf
from .base import UnsupportedStorage
from .filesystem import FilesystemMarkerStore, FilesystemWalker
from .filesystem_quarantine import FilesystemQuarantine

SUPPORTED = (
    "django.core.files.storage.FileSystemStorage (local files) and "
    "storages.backends.s3.S3Storage (S3 and services that speak its protocol), or a subclass of either"
)


@dataclasses.dataclass(frozen=True)
class Backend:
    """The walker, quarantine and marker store that serve one storage."""

    storage: object
    walker_class: type
    quarantine_class: type
    marker_store_class: type
    quarantine_place: Callable[[], str]  # reads the setting that says where the quarantine is

    def walker(self):
        """Return a walker that lists and deletes the storage's files under ``uploads/``."""
        return self.walker_class(self.storage)

    def quarantine(self):
        """Return the storage's quarantine, where the settings put it."""
        return self.quarantine_class(self.storage, self.quarantine_place())

    def marker_store(self):
        """Return where the storage keeps the marker that binds it to its database."""
        return self.marker_store_class(self.storage)


def backend_for(storage=None):
    """Return the ``Backend`` of ``storage`` (default: the media storage); raise ``UnsupportedStorage``."""
    storage = storage or default_storage
    if isinstance(storage, FileSystemStorage):
        return Backend(
            storage, FilesystemWalker, FilesystemQuarantine, FilesystemMarkerStore, conf.quarantine_root
        )
    # Looked up, never imported: boto3 costs a fifth of a second and 20 MiB, which a sweep of
    # local files never needs, and an S3Storage exists only once its module has been imported.
    s3_storage = getattr(sys.modules.get("storages.backends.s3"), "S3Storage", None)
    if s3_storage is not None and isinstance(storage, s3_storage):
        from .s3 import S3MarkerStore, S3Walker
        from .s3_quarantine import S3Quarantine

        return Backend(storage, S3Walker, S3Quarantine, S3MarkerStore, conf.quarantine_prefix)
    kind = storage.__class__  # the class behind Django's lazy default_storage
    raise UnsupportedStorage(
        f"no cleanup backend for the media storage {kind.__module__}.{kind.__qualname__}: "
        f"the sweep supports {SUPPORTED}"
    )
