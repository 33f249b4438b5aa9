import uuid

import pytest
from django.urls import reverse

from media_app.cleanup.engine import run_cleanup
from tests import factories
from tests.backends import later

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
