"""The quarantine on S3: a key prefix outside ``uploads/`` (``MEDIA_CLEANUP_QUARANTINE_PREFIX``).

A file moves in by a server-side copy, then a batched delete. What the prefix holds is read
with suspicion, as on local files: a key that is not part of a readable run is reported as a
``QuarantineProblem``, never restored, never purged.
"""

import logging
from contextlib import closing

from botocore.exceptions import BotoCoreError, ClientError

from ...paths import UPLOADS_PREFIX, in_uploads, is_layout_entry
from ..batches import batched
from ..manifest import (
    MANIFEST_PREFIX,
    META,
    SIZE_RECORD,
    SIZE_RECORD_LIMIT,
    encode_meta,
    encode_part,
    encode_size,
    is_record_name,
    is_uuid_text,
    manifest_lines,
    parse_size,
    part_name,
)
from .base import (
    KEPT_LAYOUT_ENTRY,
    LEADS_OUTSIDE,
    NOT_A_PLAIN_NAME,
    NOT_A_RUN,
    Deletion,
    MissingMeta,
    QuarantinedRun,
    QuarantineError,
    QuarantineProblem,
    Restored,
    UnreadableRun,
    bad_meta,
)
from .s3 import NOT_FOUND, PAGE_SIZE, S3Walker, error_code

logger = logging.getLogger(__name__)


class S3Quarantine:
    """A quarantine under a key prefix outside ``uploads/``: a server-side copy, then a batched delete.

    Copies are one request per object (S3 has no batch copy); deletes go through the walker's
    DeleteObjects batches. Objects keep the bucket's default (private) access.
    """

    def __init__(self, storage, prefix):
        self.walker = S3Walker(storage)
        self.client = self.walker.client
        self.bucket = self.walker.bucket
        if (
            not prefix.strip("/")
            or (prefix + "/").startswith(UPLOADS_PREFIX)
            or UPLOADS_PREFIX.startswith(prefix)
        ):
            raise QuarantineError(
                f"the quarantine prefix {prefix!r} must be a folder outside {UPLOADS_PREFIX}"
            )
        self.prefix = self.walker.key_prefix + prefix

    def _key(self, run_id, name=""):
        return f"{self.prefix}{run_id}/{name}"

    def _put(self, key, body):
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        except (BotoCoreError, ClientError) as exc:
            raise QuarantineError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc

    def _objects(self, prefix):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        try:
            for page in pages:
                yield from page.get("Contents", ())
        except (BotoCoreError, ClientError) as exc:
            raise QuarantineError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from exc

    def _read(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise QuarantineError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def _exists(self, key):
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return False
            raise
        return True

    def location(self, run_id):
        """Return where the run's quarantine is, for messages."""
        return f"s3://{self.bucket}/{self._key(run_id)}"

    def begin(self, run_id, now, **meta):
        """Open the run's quarantine, stamped with the engine's clock (retention counts from it).

        ``meta`` adds keys to the run's meta.json; ``runs()`` and ``run()`` return them.
        """
        self._put(self._key(run_id, META), encode_meta(run_id, now, meta))

    def record(self, run_id, part, entries):
        """Write one manifest part before its batch is carried out."""
        self._put(self._key(run_id, part_name(part)), encode_part(entries))

    def move_in(self, run_id, files):
        """Copy each file under the run's prefix, then delete the originals in batches; yield outcomes."""
        copied = []
        for stored in files:
            if not in_uploads(stored.name):
                yield stored, Deletion.FAILED, NOT_A_PLAIN_NAME
                continue
            if is_layout_entry(stored.name):
                yield stored, Deletion.FAILED, KEPT_LAYOUT_ENTRY
                continue
            try:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=self._key(run_id, stored.name),
                    CopySource={"Bucket": self.bucket, "Key": self.walker.key_prefix + stored.name},
                )
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    yield stored, Deletion.GONE, ""
                else:
                    yield stored, Deletion.FAILED, f"cannot copy into the quarantine: {exc}"
                continue
            except BotoCoreError as exc:
                yield stored, Deletion.FAILED, f"cannot copy into the quarantine: {exc}"
                continue
            copied.append(stored)
        yield from self.walker.delete(copied)

    def record_size(self, run_id, size):
        """Record the bytes the run moved in, once it has ended: ``size()`` reads them from then on."""
        self._put(self._key(run_id, SIZE_RECORD), encode_size(size))

    def _recorded_size(self, run_id):
        """Return the bytes the run's size.json records, or None (logged unless it is simply absent)."""
        key = self._key(run_id, SIZE_RECORD)
        try:
            with closing(self.client.get_object(Bucket=self.bucket, Key=key)["Body"]) as body:
                raw = body.read(SIZE_RECORD_LIMIT)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            problem = f"cannot be read ({exc})"
        except BotoCoreError as exc:
            problem = f"cannot be read ({exc})"
        else:
            try:
                return parse_size(raw)
            except ValueError as exc:
                problem = str(exc)
        logger.warning("s3://%s/%s %s: the run's files are measured instead", self.bucket, key, problem)
        return None

    def runs(self):
        """Return ``({run id: QuarantinedRun}, [QuarantineProblem])``: the runs, and what is not one.

        One listing of the keys right under the prefix (the run "folders"), then one read of each
        run's meta.json: the quarantined files themselves are never listed here.
        """
        found, problems = {}, []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
        )
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    if entry["Key"] != self.prefix:  # a console's folder marker is no stray key
                        problems.append(QuarantineProblem(f"s3://{self.bucket}/{entry['Key']}", NOT_A_RUN))
                for folder in page.get("CommonPrefixes", ()):
                    run_id = folder["Prefix"][len(self.prefix) : -1]
                    if not is_uuid_text(run_id):
                        problems.append(QuarantineProblem(self.location(run_id), NOT_A_RUN))
                        continue
                    try:
                        found[run_id] = self._read_run(run_id)
                    except UnreadableRun as exc:
                        problems.append(exc.problem)
        except (BotoCoreError, ClientError) as exc:
            raise QuarantineError(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}") from exc
        return found, problems

    def run(self, run_id):
        """Return the run's ``QuarantinedRun``, or None; raise ``UnreadableRun`` when it cannot be read."""
        try:
            return self._read_run(run_id)
        except MissingMeta:
            if any(True for _ in self._objects(self._key(run_id))):
                raise
            return None  # no meta.json and nothing else: no such run

    def _read_run(self, run_id):
        """Return the run's ``QuarantinedRun`` from its meta.json; raise ``UnreadableRun`` if it cannot."""
        key = self._key(run_id, META)
        where = f"s3://{self.bucket}/{key}"
        try:
            raw = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise MissingMeta(self.location(run_id)) from None
            raise bad_meta(where, f"cannot be read ({exc})") from None
        except BotoCoreError as exc:
            raise QuarantineError(f"cannot read {where}: {exc}") from exc
        return QuarantinedRun.from_meta(run_id, raw, where)

    def entries(self, run_id):
        """Yield a ``ManifestLine`` for each line of the run's manifest, part by part."""
        run_key = self._key(run_id)
        parts = sorted(e["Key"] for e in self._objects(self._key(run_id, MANIFEST_PREFIX)))
        for key in parts:
            # Split bytes, not text: str.splitlines() also splits at U+2028 and U+0085, which a
            # caption may hold and JSON written with ensure_ascii=False leaves as they are.
            yield from manifest_lines(key[len(run_key) :], self._read(key).splitlines())

    def move_back(self, run_id, names, dry_run=False):
        """Copy files back to their original keys (a fresh LastModified), then drop the quarantined copies."""
        if not dry_run:
            self._delete_keys([{"Key": self._key(run_id, SIZE_RECORD)}])
        restored = []
        for name in names:
            target = self.walker.key_prefix + name
            source = self._key(run_id, name)
            try:
                if not in_uploads(name):
                    yield name, Restored.FAILED, LEADS_OUTSIDE
                elif self._exists(target):
                    yield name, Restored.EXISTS, "a file is there again; left as it is"
                elif not self._exists(source):
                    yield name, Restored.MISSING, "not in the quarantine"
                else:
                    if not dry_run:
                        self.client.copy_object(
                            Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
                        )
                        restored.append({"Key": source})
                    yield name, Restored.RESTORED, ""
            except (BotoCoreError, ClientError) as exc:
                yield name, Restored.FAILED, f"{type(exc).__name__}: {exc}"
        self._delete_keys(restored)

    def size(self, run_id):
        """Return the bytes of the files a run's quarantine holds: as its size.json records, else listed."""
        recorded = self._recorded_size(run_id)
        if recorded is not None:
            return recorded
        return sum(
            entry["Size"] for entry in self._objects(self._key(run_id)) if self._is_file(run_id, entry)
        )

    def purge(self, run_id):
        """Delete a run's quarantine for good; return the bytes of files it held (as listed).

        meta.json goes last: a purge that fails midway leaves a run that is still listed.
        """
        size, keys = 0, []
        meta, recorded = self._key(run_id, META), self._key(run_id, SIZE_RECORD)
        for entry in self._objects(self._key(run_id)):
            size += entry["Size"] if self._is_file(run_id, entry) else 0
            if entry["Key"] not in (meta, recorded):
                keys.append({"Key": entry["Key"]})
        self._delete_keys([{"Key": recorded}])  # what a purge that fails midway leaves is listed again
        self._delete_keys(keys)
        self._delete_keys([{"Key": meta}])
        return size

    def _is_file(self, run_id, entry):
        return not is_record_name(entry["Key"][len(self._key(run_id)) :])

    def _delete_keys(self, keys):
        for batch in batched(keys, PAGE_SIZE):
            try:
                response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
            except (BotoCoreError, ClientError) as exc:
                raise QuarantineError(f"cannot delete from s3://{self.bucket}/{self.prefix}: {exc}") from exc
            if response.get("Errors"):
                raise QuarantineError(f"cannot delete from the quarantine: {response['Errors'][:3]}")
