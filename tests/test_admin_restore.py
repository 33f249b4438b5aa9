import importlib
import uuid
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from media_app.cleanup.engine import run_cleanup
from media_app.models import CleanupRun
from tests import factories
from tests.backends import later
from tests.test_cleanup_s3 import Requests

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run_id(media_root):
    """A real sweep that quarantined a stray file."""
    factories.media(factories.tour())
    factories.stray_file(media_root, "uploads/guides/stray.jpg")
    return run_cleanup(now=later()).run_id


def pages(client, run_id):
    """Return the run's report page and its restore preview."""
    return (
        client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id])),
        client.get(reverse("admin:media_app_cleanuprun_restore", args=[run_id])),
    )


def test_a_corrupt_meta_json_of_another_run_leaves_the_pages_working(admin_client, run_id, quarantine_root):
    corrupt = quarantine_root / str(uuid.uuid4()) / "meta.json"
    corrupt.parent.mkdir()
    corrupt.write_text("{")

    report, preview = pages(admin_client, run_id)

    assert (report.status_code, preview.status_code) == (200, 200)
    assert reverse("admin:media_app_cleanuprun_restore", args=[run_id]) in report.content.decode()
    assert 'id="restore-preview"' in preview.content.decode()


def test_the_restore_page_of_a_run_whose_meta_json_is_corrupt_says_why(
    admin_client, run_id, media_root, quarantine_root
):
    (quarantine_root / run_id / "meta.json").write_text("{")

    report, preview = pages(admin_client, run_id)
    confirmed = admin_client.post(reverse("admin:media_app_cleanuprun_restore", args=[run_id]), follow=True)

    assert (report.status_code, preview.status_code, confirmed.status_code) == (200, 200, 200)
    assert reverse("admin:media_app_cleanuprun_restore", args=[run_id]) in report.content.decode()
    html = preview.content.decode()
    meta = quarantine_root / run_id / "meta.json"
    assert f"the quarantine of run {run_id} cannot be read: {meta}: is not valid JSON" in html
    assert 'name="restore"' not in html
    assert "Restore failed" in confirmed.content.decode()
    assert not (media_root / "uploads/guides/stray.jpg").exists()


# -- the pages never make the storage work for them ------------------------------------------------


@pytest.fixture
def s3_quarantined_run(s3_backend, settings):
    """A real sweep on S3 that quarantined two stray files; the requests sent from then on are recorded."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    factories.media(factories.tour())
    for n in range(2):
        s3_backend.put(f"uploads/guides/stray-{n}.jpg")
    result = run_cleanup(now=later())
    assert (result.status, result.deleted_files) == ("ok", 2)
    return result.run_id, Requests(s3_backend.client)


def test_the_run_report_offers_a_restore_without_asking_the_storage(admin_client, s3_quarantined_run):
    run_id, requests = s3_quarantined_run

    for _ in range(3):  # the page reloads itself while a run goes on
        html = admin_client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id])).content.decode()

    assert reverse("admin:media_app_cleanuprun_restore", args=[run_id]) in html
    assert requests.operations() == []


def test_the_restore_preview_reads_the_manifest_only_and_the_confirmation_asks_the_storage(
    admin_client, s3_quarantined_run
):
    run_id, requests = s3_quarantined_run
    url = reverse("admin:media_app_cleanuprun_restore", args=[run_id])

    preview = admin_client.get(url).content.decode()
    previewed = requests.operations()
    admin_client.post(url)

    assert "removed <strong>2</strong>\n      files and <strong>0</strong>\n      rows" in preview
    assert set(previewed) <= {"GetObject", "ListObjectsV2"}, "meta.json and the manifest, nothing per file"
    assert previewed.count("GetObject") == 2
    assert "HeadObject" in requests.operations()[len(previewed) :], "the restore asks about each file"


def test_a_run_is_restorable_once_it_quarantined_and_no_longer_once_purged(admin_client, run_id, settings):
    dry = run_cleanup(dry_run=True, now=later())
    assert CleanupRun.objects.get(pk=run_id).restorable
    assert not CleanupRun.objects.get(pk=dry.run_id).restorable

    run_cleanup(purge_quarantine=True, now=later(days=30))

    assert not CleanupRun.objects.get(pk=run_id).restorable
    report = admin_client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id])).content.decode()
    assert reverse("admin:media_app_cleanuprun_restore", args=[run_id]) not in report


def test_runs_recorded_before_the_flag_are_restorable_when_they_quarantined_something():
    migration = importlib.import_module("media_app.migrations.0007_cleanuprun_restorable")
    quarantined = CleanupRun.objects.create(started_at=timezone.now(), quarantined_bytes=10)
    deleted_at_once = CleanupRun.objects.create(started_at=timezone.now(), bytes_freed=10)
    previewed = CleanupRun.objects.create(started_at=timezone.now(), dry_run=True, quarantined_bytes=10)

    migration.mark_runs_that_quarantined(apps, SimpleNamespace(connection=connection))

    restorable = set(CleanupRun.objects.filter(restorable=True).values_list("pk", flat=True))
    assert restorable == {quarantined.pk}
    assert {deleted_at_once.pk, previewed.pk}.isdisjoint(restorable)
