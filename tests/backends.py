"""The storage backends the tests run on, behind one small interface: put, read, list, delete.

Tests that take the ``backend`` fixture run once on local files and once on an S3 bucket of
the test session's S3-protocol server (moto). Files are always written now; a test that needs
old files moves the engine's clock (``later()``) instead, since moto cannot backdate
``LastModified``.
"""

import json
import os
from contextlib import contextmanager
from datetime import timedelta

from botocore.config import Config
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone


def later(days=2):
    """Return a clock ``days`` ahead, for ``run_cleanup(now=...)``: every file written so far is that old."""
    return timezone.now() + timedelta(days=days)


def s3_options(endpoint, bucket, **overrides):
    """Return S3Storage options for a bucket of the test server, as settings.py builds them for s3."""
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
        # As settings.py sizes it: a pool for MEDIA_CLEANUP_S3_LIST_CONCURRENCY's default of 16.
        "client_config": Config(
            retries={"mode": "standard", "total_max_attempts": 10},
            max_pool_connections=16,
            s3={"addressing_style": "path"},
        ),
        **overrides,
    }


class Backend:
    """Write, read and delete through the default storage, as the product does."""

    name = ""
    denial = ""  # a pattern of the message a denied delete leaves

    def put(self, name, content=b"stray"):
        """Store ``content`` under exactly ``name``; return the name."""
        stored = default_storage.save(name, ContentFile(content))
        assert stored == name, f"the storage renamed {name!r} to {stored!r}"
        return name

    def exists(self, name):
        return default_storage.exists(name)

    def read(self, name):
        with default_storage.open(name) as handle:
            return handle.read()

    def remove(self, name):
        default_storage.delete(name)

    def missing(self, names):
        """Return the names among ``names`` that are no longer stored."""
        return [name for name in names if not self.exists(name)]

    def modified(self, name):
        """Return when the stored file was last modified, as a POSIX timestamp."""
        return default_storage.get_modified_time(name).timestamp()


class FilesystemBackend(Backend):
    """Local files under the test's MEDIA_ROOT."""

    name = "filesystem"
    denial = "Permission denied"

    def __init__(self, root, settings):
        self.root = root
        self.settings = settings
        self.quarantine = root.parent / "quarantine"  # as the media_root fixture sets it

    def quarantined(self, run_id, name):
        """Return the bytes a run's quarantine holds for ``name``, or None."""
        path = self.quarantine / run_id / name
        return path.read_bytes() if path.exists() else None

    def names(self):
        """Return every stored file's name (symlinks included), sorted."""
        found = []
        for folder, _, files in os.walk(self.root):
            found += [os.path.relpath(os.path.join(folder, name), self.root) for name in files]
        return sorted(found)

    @contextmanager
    def deletes_failing(self):
        """Make every delete fail, as a read-only disk would."""
        default = self.settings.STORAGES["default"]
        self.settings.STORAGES = {
            **self.settings.STORAGES,
            "default": {"BACKEND": "tests.storages.FailingDeleteStorage"},
        }
        try:
            yield
        finally:
            self.settings.STORAGES = {**self.settings.STORAGES, "default": default}


class S3Backend(Backend):
    """A bucket of its own on the session's S3-protocol server."""

    name = "s3"
    denial = "AccessDenied|Forbidden"

    def __init__(self, client, bucket):
        self.client = client
        self.bucket = bucket

    def quarantined(self, run_id, name):
        """Return the bytes a run's quarantine holds for ``name``, or None."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=f"quarantine/{run_id}/{name}")
        except self.client.exceptions.NoSuchKey:
            return None
        return response["Body"].read()

    def names(self):
        """Return every key of the bucket, sorted."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))

    @contextmanager
    def deletes_failing(self, resource="*"):
        """Make deletes of keys matching ``resource`` fail, by a bucket policy the server enforces."""
        statement = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{self.bucket}/{resource}",
        }
        self.client.put_bucket_policy(
            Bucket=self.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        )
        try:
            yield
        finally:
            self.client.delete_bucket_policy(Bucket=self.bucket)
