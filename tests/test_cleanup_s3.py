"""The S3 walker against the session's S3-protocol server (moto), and the sweep through it.

The storage rules themselves run on both backends in test_cleanup_engine.py and
test_signals.py; these tests cover what only object storage has: pages, batches, per-key
errors, throttling and the key prefix.
"""

import json
import threading
import time
import uuid
from collections import Counter

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from django.core.files.storage import default_storage

from media_app.cleanup import removal
from media_app.cleanup.backends import backend_for, s3
from media_app.cleanup.backends.base import KEPT_LAYOUT_ENTRY, MARKER_NAME, Deletion, StoredFile
from media_app.cleanup.engine import run_cleanup
from media_app.models import Media
from tests import factories
from tests.backends import later, s3_options
from tests.conftest import S3_STORAGE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def delete_at_once(settings):
    """Exercise the walker's own delete path: no quarantine, unless a test sets it again."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0


# Retries that give up soon, for throttling that outlasts them.
TWO_ATTEMPTS = Config(retries={"mode": "standard", "total_max_attempts": 2}, s3={"addressing_style": "path"})
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class Body:
    """The raw body of a canned response, as botocore reads it."""

    def __init__(self, content):
        self.content = content

    def stream(self, **kwargs):
        yield self.content


class Requests:
    """Record every request the storage's client sends; answer SlowDown to the first ``throttled``."""

    def __init__(self, client, throttled=None):
        self.sent = []
        self.throttled = Counter(throttled or {})
        self.slowed_down = Counter()
        client.meta.events.register("before-send.s3", self.before_send)

    def before_send(self, request, event_name, **kwargs):
        operation = event_name.rsplit(".", 1)[1]
        self.sent.append((operation, request.url))
        if self.slowed_down[operation] < self.throttled[operation]:
            self.slowed_down[operation] += 1
            return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, Body(SLOW_DOWN))
        return None

    def operations(self):
        return [operation for operation, _ in self.sent]


class InFlight:
    """Count the calls of ``operation`` under way at once; each waits a little, so that calls can overlap."""

    def __init__(self, client, operation, wait=0.03):
        self.now = self.most = 0
        self.wait = wait
        self.lock = threading.Lock()
        client.meta.events.register(f"before-call.s3.{operation}", self.started)
        client.meta.events.register(f"before-send.s3.{operation}", self.sending)
        client.meta.events.register(f"after-call.s3.{operation}", self.ended)

    def started(self, **kwargs):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def sending(self, **kwargs):
        time.sleep(self.wait)

    def ended(self, **kwargs):
        with self.lock:
            self.now -= 1


def use_storage(settings, s3_server, bucket, **options):
    """Switch the default storage to ``bucket`` with these S3Storage options; return its client."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": S3_STORAGE, "OPTIONS": s3_options(s3_server, bucket, **options)},
    }
    return default_storage.connection.meta.client


def test_an_s3_storage_is_walked_by_the_s3_walker(s3_backend):
    assert isinstance(backend_for(default_storage).walker(), s3.S3Walker)


def test_a_sweep_lists_in_pages_of_1000_and_sends_no_request_per_object(s3_backend):
    for n in range(5):
        s3_backend.put(f"uploads/tours/{n}.jpg", content=b"x" * n)
    requests = Requests(s3_backend.client)

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.files_checked, result.deleted_files, result.bytes_freed) == ("ok", 5, 5, 10)
    # The storage marker is read, then written by this first real run (binding.py).
    assert requests.operations() == ["GetObject", "ListObjectsV2", "PutObject", "DeleteObjects"]
    assert "max-keys=1000" in requests.sent[1][1]


def test_one_connection_lists_one_page_at_a_time_with_size_and_time_from_it(
    s3_backend, settings, monkeypatch
):
    settings.MEDIA_CLEANUP_S3_LIST_CONCURRENCY = 1
    monkeypatch.setattr(s3, "PAGE_SIZE", 2)
    names = [s3_backend.put(f"uploads/tours/{n}.jpg", content=b"x" * n) for n in range(5)]
    s3_backend.put("other/outside-uploads.jpg")
    requests = Requests(s3_backend.client)
    files = backend_for(default_storage).walker().iter_files()

    first = next(files)
    assert requests.operations() == ["ListObjectsV2"], "one page asked for, not the whole listing"
    listed = [first, *files]

    assert [stored.name for stored in listed] == names
    assert [stored.size for stored in listed] == [0, 1, 2, 3, 4]
    assert all(abs(stored.modified - time.time()) < 60 for stored in listed)
    assert requests.operations() == ["ListObjectsV2"] * 3
    assert all("max-keys=2" in url for _, url in requests.sent)


def test_deletes_go_in_deleteobjects_batches_of_at_most_the_page_size(s3_backend, monkeypatch):
    monkeypatch.setattr(s3, "PAGE_SIZE", 2)
    names = [s3_backend.put(f"uploads/tours/{n}.jpg") for n in range(5)]
    requests = Requests(s3_backend.client)

    outcomes = list(backend_for(default_storage).walker().delete(StoredFile(name, size=5) for name in names))

    assert [(stored.name, outcome) for stored, outcome, _ in outcomes] == [
        (name, Deletion.DELETED) for name in names
    ]
    assert requests.operations() == ["DeleteObjects"] * 3
    assert s3_backend.names() == []


def test_deleteobjects_calls_go_side_by_side_up_to_the_setting_outcomes_in_order(
    s3_backend, settings, monkeypatch
):
    settings.MEDIA_CLEANUP_S3_LIST_CONCURRENCY = 3
    monkeypatch.setattr(s3, "PAGE_SIZE", 2)
    names = [s3_backend.put(f"uploads/tours/{n:02}.jpg") for n in range(13)]
    in_flight = InFlight(s3_backend.client, "DeleteObjects")

    with s3_backend.deletes_failing(resource="uploads/tours/07.jpg"):
        outcomes = list(
            backend_for(default_storage).walker().delete(StoredFile(name, size=5) for name in names)
        )

    assert [(stored.name, outcome) for stored, outcome, _ in outcomes] == [
        (name, Deletion.FAILED if name.endswith("07.jpg") else Deletion.DELETED) for name in names
    ]
    assert outcomes[7][2] == "AccessDenied: Access Denied"
    assert in_flight.most == 3
    assert s3_backend.names() == ["uploads/tours/07.jpg"]


@pytest.mark.parametrize(("quarantine_days", "operation"), [(0, "DeleteObjects"), (7, "CopyObject")])
def test_a_sweeps_batches_of_files_go_side_by_side_up_to_the_setting(
    quarantine_days, operation, s3_backend, settings, monkeypatch
):
    """The sweep hands the storage one checked batch after another; S3 carries out several at once."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = quarantine_days
    settings.MEDIA_CLEANUP_S3_LIST_CONCURRENCY = 3
    monkeypatch.setattr(removal, "PAGE_SIZE", 2)
    strays = [s3_backend.put(f"uploads/tours/{n:02}.jpg") for n in range(12)]
    in_flight = InFlight(s3_backend.client, operation, wait=0.1)

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.deleted_files) == ("ok", 12)
    assert in_flight.most == 3, "three batches at once, each one request at a time"
    assert s3_backend.missing(strays) == strays


def test_a_key_already_gone_is_reported_deleted_since_s3_deletes_are_idempotent(s3_backend):
    (outcome,) = (
        backend_for(default_storage).walker().delete([StoredFile("uploads/tours/never-there.jpg", size=0)])
    )

    assert outcome[1] == Deletion.DELETED


def test_a_key_the_server_refuses_to_delete_is_one_error_and_the_others_go(s3_backend):
    strays = [s3_backend.put(f"uploads/tours/{n}.jpg") for n in range(3)]

    with s3_backend.deletes_failing(resource="uploads/tours/1.jpg"):
        result = run_cleanup(force=True, now=later())

    assert (result.status, result.exit_code, result.error_count, result.deleted_files) == ("errors", 1, 1, 2)
    assert result.errors == ["uploads/tours/1.jpg: AccessDenied: Access Denied"]
    assert s3_backend.names() == [MARKER_NAME, strays[1]]


def test_throttling_is_retried_by_botocore_and_the_run_ends_ok(s3_backend):
    """Simulated: moto never throttles, so a hook answers 503 SlowDown to the first two tries.

    The retries are botocore's own (standard mode), as the client configuration says.
    """
    owner = factories.tour()
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    strays = [s3_backend.put(f"uploads/tours/stray-{n}.jpg") for n in range(3)]
    requests = Requests(s3_backend.client, throttled={"ListObjectsV2": 2, "DeleteObjects": 2})

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.error_count) == ("ok", 0)
    assert (result.deleted_records, result.deleted_files) == (1, 4)
    assert requests.slowed_down == {"ListObjectsV2": 2, "DeleteObjects": 2}
    assert Counter(requests.operations()) == {
        "GetObject": 1,  # the storage marker, then written once
        "PutObject": 1,
        "ListObjectsV2": 3,
        "DeleteObjects": 2 + 2,
    }
    assert s3_backend.missing([orphan.file.name, *strays]) == [orphan.file.name, *strays]


def test_throttling_past_the_attempts_fails_the_listing_and_deletes_nothing(s3_backend, s3_server, settings):
    """Simulated throttling that outlasts the configured attempts: the run cannot go on."""
    stray = s3_backend.put("uploads/tours/stray.jpg")
    client = use_storage(settings, s3_server, s3_backend.bucket, client_config=TWO_ATTEMPTS)
    requests = Requests(client, throttled={"ListObjectsV2": 99})

    result = run_cleanup(force=True, now=later())

    assert result.status == "failed" and result.exit_code == 1
    assert "SlowDown" in result.message
    assert requests.operations() == ["GetObject"] + ["ListObjectsV2"] * 2
    assert s3_backend.exists(stray)


def test_throttled_deletes_past_the_attempts_are_errors_for_their_keys(s3_backend, s3_server, settings):
    """Simulated throttling that outlasts the configured attempts: each key of the batch failed."""
    strays = [s3_backend.put(f"uploads/tours/{n}.jpg") for n in range(2)]
    client = use_storage(settings, s3_server, s3_backend.bucket, client_config=TWO_ATTEMPTS)
    Requests(client, throttled={"DeleteObjects": 99})

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.error_count, result.deleted_files) == ("errors", 2, 0)
    assert all("SlowDown" in message for message in result.errors)
    assert s3_backend.missing(strays) == []


def test_a_missing_bucket_refuses_the_run_and_names_the_bucket(s3_server, settings):
    use_storage(settings, s3_server, "no-such-bucket")

    result = run_cleanup(force=True)

    assert (result.status, result.exit_code) == ("refused", 1)
    assert "s3://no-such-bucket does not exist: is AWS_STORAGE_BUCKET_NAME right?" in result.message


def test_a_key_prefix_confines_the_sweep_to_its_own_uploads(s3_backend, s3_server, settings):
    foreign = s3_backend.put("uploads/tours/another-apps-file.jpg")
    use_storage(settings, s3_server, s3_backend.bucket, location="media")
    live = factories.media(factories.tour())
    stray = s3_backend.put("uploads/tours/stray.jpg")

    result = run_cleanup(force=True, now=later())

    assert (result.files_checked, result.deleted_files) == (2, 1)
    assert s3_backend.names() == sorted([foreign, f"media/{live.file.name}", f"media/{MARKER_NAME}"])
    assert stray == "uploads/tours/stray.jpg" and not s3_backend.exists(stray)


def test_keys_the_storage_could_not_have_written_are_left_alone(s3_backend, caplog):
    odd_keys = ["uploads/tours/", "uploads//tours/x.jpg", "uploads/tours/./x.jpg"]
    for key in odd_keys:
        s3_backend.client.put_object(Bucket=s3_backend.bucket, Key=key, Body=b"x")

    result = run_cleanup(force=True, now=later())

    assert (result.files_checked, result.deleted_files, result.status) == (0, 0, "ok")
    assert s3_backend.names() == sorted([*odd_keys, MARKER_NAME])
    assert len([r for r in caplog.records if "Leaving alone" in r.getMessage()]) == 2


def test_the_command_runs_on_s3_by_configuration_alone_with_its_quarantine(s3_backend, s3_server, manage_py):
    owner = factories.tour()
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    live = factories.media(factories.guide())
    stray = s3_backend.put("uploads/tours/stray.jpg")
    environment = {
        "MEDIA_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": s3_backend.bucket,
        "AWS_S3_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
    }

    done = manage_py("cleanup_media", "--json", "--min-age=0", env=environment)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["status"], report["deleted_records"], report["deleted_files"]) == ("ok", 1, 2)
    assert not Media.objects.filter(pk=orphan.pk).exists()
    quarantine = f"quarantine/{report['run_id']}/"
    assert [name for name in s3_backend.names() if not name.startswith(quarantine)] == [
        MARKER_NAME,
        live.file.name,
    ]
    assert s3_backend.quarantined(report["run_id"], stray) == b"stray"


def test_quarantine_is_a_server_side_copy_then_one_batched_delete(s3_backend, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    strays = [s3_backend.put(f"uploads/tours/{n}.jpg") for n in range(3)]
    requests = Requests(s3_backend.client)

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.deleted_files, result.quarantined_bytes) == ("ok", 3, 3 * len(b"stray"))
    operations = requests.operations()
    assert operations.count("CopyObject") == 3 and operations.count("DeleteObjects") == 1
    assert operations.count("PutObject") == 4, (
        "the storage marker, the run's meta.json, one manifest part and, at the end, its size.json"
    )
    assert all(s3_backend.quarantined(result.run_id, name) == b"stray" for name in strays)
    assert s3_backend.missing(strays) == strays


def test_a_throttled_quarantine_copy_is_retried_by_botocore(s3_backend, settings):
    """Simulated: a hook answers 503 SlowDown to the first two copies."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    stray = s3_backend.put("uploads/tours/stray.jpg")
    requests = Requests(s3_backend.client, throttled={"CopyObject": 2})

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.deleted_files) == ("ok", 1)
    assert requests.slowed_down == {"CopyObject": 2}
    assert s3_backend.quarantined(result.run_id, stray) == b"stray"


def test_keys_directly_in_uploads_are_refused_at_delete_time_too(s3_backend, settings):
    """Defence in depth: the sweep never offers them, and neither the walker nor the quarantine takes them."""
    key = s3_backend.put("uploads/readme.txt")
    quarantine = backend_for(default_storage).quarantine()

    deletes = list(backend_for(default_storage).walker().delete([StoredFile(key, size=5)]))
    moves = list(quarantine.move_in(str(uuid.uuid4()), [StoredFile(key, size=5)]))

    assert [(outcome, detail) for _, outcome, detail in deletes + moves] == [
        (Deletion.FAILED, KEPT_LAYOUT_ENTRY)
    ] * 2
    assert s3_backend.names() == [key]
