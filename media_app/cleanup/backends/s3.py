"""The S3 backend: walk and delete the objects under ``uploads/`` of django-storages' ``S3Storage``.

The listing (``s3_listing.py``) reads ListObjectsV2 pages of 1,000 keys on up to
``MEDIA_CLEANUP_S3_LIST_CONCURRENCY`` connections at once, ranges of keys side by side, and
hands the keys on in UTF-8 byte order, the order the engine merges in; each object's size and
``LastModified`` come from the page itself, with no request per object. Deletes go in
DeleteObjects calls of up to 1,000 keys, as many at once; each key's error is reported on its
own. Throttling (503 SlowDown) and transient errors are retried by botocore, as the client's
``retries`` configuration says (``AWS_RETRY_MODE``, ``AWS_MAX_ATTEMPTS``): nothing here retries
by hand. The storage's marker lives here too; the quarantine on S3 is ``s3_quarantine.py``.
"""

import collections
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from botocore.exceptions import BotoCoreError, ClientError

from ... import conf
from ...paths import UPLOADS_PREFIX, in_uploads, is_layout_entry, object_key_prefix
from ..batches import batched
from .base import (
    KEPT_LAYOUT_ENTRY,
    MARKER_NAME,
    NOT_A_PLAIN_NAME,
    Deletion,
    LocationMissing,
    Marker,
    StorageUnavailable,
    StoredFile,
)
from .s3_listing import ParallelListing

logger = logging.getLogger(__name__)

# The most keys S3 returns in one ListObjectsV2 page and accepts in one DeleteObjects call.
PAGE_SIZE = 1000
# What S3 answers for a key that is not there.
NOT_FOUND = ("404", "NoSuchKey", "NotFound")


def is_object_name(name):
    """Return True for a key under ``uploads/`` that Django's storage could have written.

    Such a name is plain (``paths.in_uploads``) and names an object, not a folder marker that a
    console leaves (a key ending in ``/``), which the storage never writes.
    """
    return in_uploads(name) and not name.endswith("/")


def error_code(exc):
    """Return the error code of a botocore ``ClientError`` ("NoSuchKey", "404"...)."""
    return exc.response.get("Error", {}).get("Code")


class S3Walker:
    """Walk ``uploads/`` of a bucket and delete in batches, on several connections; ``AWS_LOCATION`` kept.

    Keys that Django's storage could not have written (folder markers ending in ``/``, names
    such as ``uploads//x``) are left alone: the storage would normalise them to another key.
    """

    def __init__(self, storage):
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        self.key_prefix = object_key_prefix(storage)
        self.unreadable_names = 0  # S3 keys are always valid UTF-8
        self.errors = []
        self.wanted_connections = conf.s3_list_concurrency()
        # More requests at once than the client's pool holds would open and drop connections.
        self.connections = min(self.wanted_connections, self.client.meta.config.max_pool_connections)
        # DeleteObjects (and the quarantine's copies) of that many batches at once.
        self.concurrency = self.connections

    def iter_files(self):
        """Yield every object under ``uploads/`` as a ``StoredFile`` with its size, in byte order."""
        if self.connections < self.wanted_connections:
            logger.warning(
                "Listing on %d connections, not MEDIA_CLEANUP_S3_LIST_CONCURRENCY=%d: the S3 client's "
                "max_pool_connections allows no more",
                self.connections,
                self.wanted_connections,
            )
        listing = ParallelListing(
            self.client,
            self.bucket,
            self.key_prefix + UPLOADS_PREFIX,
            page_size=PAGE_SIZE,
            connections=self.connections,
        )
        with closing(iter(listing)) as entries:
            for key, size, modified in entries:
                name = key[len(self.key_prefix) :]
                if not is_object_name(name):
                    if not name.endswith("/"):  # a console's folder marker is no stray key
                        logger.warning("Leaving alone %r: not a name the storage would write", name)
                    continue
                yield StoredFile(name, size=size, modified=modified)

    def iter_pages(self):
        """Yield the objects under ``uploads/`` in byte order, as pages ``(names, files)``.

        The listing gives each object's size and time: each page carries its ``StoredFile``
        objects, aligned with the names.
        """
        with closing(self.iter_files()) as files:
            for page in batched(files, PAGE_SIZE):
                yield [stored.name for stored in page], page

    def delete(self, files):
        """Delete the files in DeleteObjects calls of up to 1,000 keys; yield ``(file, outcome, detail)``.

        Up to ``connections`` calls go at once; outcomes come in the order of ``files``. S3
        reports a key that was already gone as deleted, so ``Deletion.GONE`` never comes from here.
        """
        with ThreadPoolExecutor(self.connections, thread_name_prefix="s3-delete") as pool:
            sent = collections.deque()
            for batch in batched(files, PAGE_SIZE):
                sent.append(pool.submit(self._delete_batch, batch))
                if len(sent) == self.connections:
                    yield from sent.popleft().result()
            while sent:
                yield from sent.popleft().result()

    def _delete_batch(self, batch):
        """Delete one batch in one DeleteObjects call (on a connection of the pool); return its outcomes."""
        outcomes, keyed = [], []
        for stored in batch:
            if not is_object_name(stored.name):
                outcomes.append((stored, Deletion.FAILED, NOT_A_PLAIN_NAME))
            elif is_layout_entry(stored.name):
                outcomes.append((stored, Deletion.FAILED, KEPT_LAYOUT_ENTRY))
            else:
                keyed.append((self.key_prefix + stored.name, stored))
        if not keyed:
            return outcomes
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key, _ in keyed]}
            )
        except (BotoCoreError, ClientError) as exc:
            # The retries are spent (or the request cannot succeed): the whole batch failed.
            return outcomes + [
                (stored, Deletion.FAILED, f"{type(exc).__name__}: {exc}") for _, stored in keyed
            ]
        failures = {
            error["Key"]: f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
            for error in response.get("Errors", ())
        }
        deleted = {entry["Key"] for entry in response.get("Deleted", ())}
        for key, stored in keyed:
            if key in failures:
                outcomes.append((stored, Deletion.FAILED, failures[key]))
            elif key in deleted:
                outcomes.append((stored, Deletion.DELETED, ""))
            else:
                outcomes.append((stored, Deletion.FAILED, "the server did not report the key as deleted"))
        return outcomes


class S3MarkerStore:
    """The marker of a bucket (under ``AWS_LOCATION``, when set)."""

    setting = "AWS_STORAGE_BUCKET_NAME"

    def __init__(self, storage):
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        self.key = object_key_prefix(storage) + MARKER_NAME

    def describe(self):
        """Return the storage's name for messages."""
        return f"bucket s3://{self.bucket}"

    def read(self):
        """Return the marker, or None when there is none; raise ``LocationMissing`` without the bucket."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                raise LocationMissing from None
            if error_code(exc) in NOT_FOUND:
                return None
            raise StorageUnavailable(f"cannot read s3://{self.bucket}/{self.key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot read s3://{self.bucket}/{self.key}: {exc}") from exc
        return Marker.parse(body, f"s3://{self.bucket}/{self.key}")

    def write(self, marker):
        """Write the marker, replacing any other."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=marker.dumps())
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"cannot write s3://{self.bucket}/{self.key}: {exc}") from exc
