"""Walk and delete the objects under ``uploads/`` of an S3 bucket (django-storages' ``S3Storage``).

The listing pages through ListObjectsV2, 1,000 keys a page, and takes each object's size and
``LastModified`` from the page itself: no request per object, and one page in memory at a time.
S3 lists keys in UTF-8 byte order, the order the engine merges in. Deletes go in DeleteObjects
calls of up to 1,000 keys; each key's error is reported on its own. Throttling (503 SlowDown)
and transient errors are retried by botocore, as the client's ``retries`` configuration says
(``AWS_RETRY_MODE``, ``AWS_MAX_ATTEMPTS``): nothing here retries by hand.
"""

import logging
import posixpath
from itertools import islice

from botocore.exceptions import BotoCoreError, ClientError

from ..paths import is_safe_name
from .walkers import PREFIX, Deletion, StorageUnavailable, StoredFile

logger = logging.getLogger(__name__)

# The most keys S3 returns in one ListObjectsV2 page and accepts in one DeleteObjects call.
PAGE_SIZE = 1000


def is_plain_name(name):
    """Return True for a key that Django's storage could have written: safe and normalised."""
    return is_safe_name(name) and posixpath.normpath(name) == name


class S3Walker:
    """Walk ``uploads/`` of a bucket page by page, and delete in batches; ``AWS_LOCATION`` respected.

    Keys that Django's storage could not have written (folder markers ending in ``/``, names
    such as ``uploads//x``) are left alone: the storage would normalise them to another key.
    """

    def __init__(self, storage):
        self.storage = storage
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        location = storage.location.rstrip("/")
        self.key_prefix = f"{location}/" if location else ""
        self.unreadable_names = 0  # S3 keys are always valid UTF-8
        self.errors = []

    def iter_files(self):
        """Yield every object under ``uploads/`` as a ``StoredFile``, in byte order of names."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.key_prefix + PREFIX,
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    name = entry["Key"][len(self.key_prefix) :]
                    if not is_plain_name(name):
                        if not name.endswith("/"):
                            logger.warning("Leaving alone %r: not a name the storage would write", name)
                        continue
                    yield StoredFile(name, size=entry["Size"], modified=entry["LastModified"].timestamp())
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(
                f"cannot list s3://{self.bucket}/{self.key_prefix}{PREFIX}: {exc}"
            ) from exc

    def delete(self, files):
        """Delete the files in DeleteObjects calls of up to 1,000 keys; yield ``(file, outcome, detail)``.

        S3 reports a key that was already gone as deleted, so ``Deletion.GONE`` never comes from here.
        """
        files = iter(files)
        while batch := list(islice(files, PAGE_SIZE)):
            yield from self._delete_batch(batch)

    def _delete_batch(self, batch):
        keyed = []
        for stored in batch:
            if stored.name.startswith(PREFIX) and is_plain_name(stored.name):
                keyed.append((self.key_prefix + stored.name, stored))
            else:
                yield stored, Deletion.FAILED, "refused: not a plain name under uploads/"
        if not keyed:
            return
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key, _ in keyed]}
            )
        except (BotoCoreError, ClientError) as exc:
            # The retries are spent (or the request cannot succeed): the whole batch failed.
            for _, stored in keyed:
                yield stored, Deletion.FAILED, f"{type(exc).__name__}: {exc}"
            return
        failures = {
            error["Key"]: f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
            for error in response.get("Errors", ())
        }
        deleted = {entry["Key"] for entry in response.get("Deleted", ())}
        for key, stored in keyed:
            if key in failures:
                yield stored, Deletion.FAILED, failures[key]
            elif key in deleted:
                yield stored, Deletion.DELETED, ""
            else:
                yield stored, Deletion.FAILED, "the server did not report the key as deleted"
