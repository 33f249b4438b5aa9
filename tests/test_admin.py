import re
import socket
import subprocess
import sys
import time
import unicodedata
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from media_app.admin_charts import run_charts
from media_app.admin_sweep import START_TIMEOUT, readable_duration
from media_app.cleanup.result import summary
from media_app.models import CleanupRun, Media
from tests import factories
from tests.test_uploads import RecordingUploadHandler

pytestmark = pytest.mark.django_db

INLINE_PREFIX = "media_app-media-content_type-object_id"


@pytest.mark.parametrize(
    "model",
    ["tours.tour", "tours.company", "tours.guide", "tours.driver", "accounts.user", "media_app.media"],
)
def test_every_changelist_renders(admin_client, model):
    app_label, model_name = model.split(".")
    factories.media(factories.tour())

    response = admin_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))

    assert response.status_code == 200


def test_an_owner_page_shows_its_media_inline_with_a_thumbnail(admin_client, backend):
    tour = factories.tour()
    media = factories.media(tour, name="narikala.jpg")

    response = admin_client.get(reverse("admin:tours_tour_change", args=[tour.pk]))

    assert response.status_code == 200
    # On S3 the link is signed to expire, and its signature changes with the clock.
    html = response.content.decode()
    assert f'src="{media.file.url.split("?")[0]}' in html
    assert 'class="media-thumbnail"' in html and "/static/media_app/media.css" in html
    assert "style=" not in html.split('class="media-thumbnail"')[0].rsplit("<img", 1)[1], "no inline style"


def post_tour_with_upload(client, name, content, caption=""):
    """Save a tour's admin page with one new file in its media inline; return (tour, response)."""
    tour = factories.tour(title="Kakheti", slug="kakheti")
    data = {
        "title": "Kakheti",
        "slug": "kakheti",
        "price_gel": "100.00",
        "duration_days": 1,
        "difficulty": "easy",
        "max_group_size": 12,
        f"{INLINE_PREFIX}-TOTAL_FORMS": 1,
        f"{INLINE_PREFIX}-INITIAL_FORMS": 0,
        f"{INLINE_PREFIX}-0-file": SimpleUploadedFile(name, content, "image/jpeg"),
        f"{INLINE_PREFIX}-0-caption": caption,
    }
    return tour, client.post(reverse("admin:tours_tour_change", args=[tour.pk]), data)


def test_uploading_through_the_inline_stores_the_file(admin_client, backend):
    tour, response = post_tour_with_upload(admin_client, "vineyard.jpg", factories.image_bytes(), "Vineyard")

    assert response.status_code == 302, response.content.decode()[:2000]
    media = tour.media.get()
    assert media.file.name.startswith("uploads/tours/") and media.file.name.endswith("-vineyard.jpg")
    assert backend.read(media.file.name) == factories.image_bytes()
    assert media.mime_type == "image/jpeg"


def test_a_rejected_upload_shows_its_error_and_stores_nothing(admin_client, backend):
    tour, response = post_tour_with_upload(admin_client, "invoice.jpg", b"<html>not a photo</html>")

    assert response.status_code == 200
    assert "This file is not an allowed type" in response.content.decode()
    assert not tour.media.exists()
    assert list(backend.names()) == []


def test_media_changelist_shows_owner_size_type_and_thumbnail(admin_client):
    tour = factories.tour(title="Old Tbilisi")
    media = factories.media(tour, name="baths.jpg", content=b"x" * 2048)

    html = admin_client.get(reverse("admin:media_app_media_changelist")).content.decode()

    assert reverse("admin:tours_tour_change", args=[tour.pk]) in html
    assert "Old Tbilisi" in html
    assert "2.0\xa0KB" in html
    assert "image/jpeg" in html
    assert f'<img src="{media.file.url}" alt="baths.jpg" loading="lazy" class="media-thumbnail">' in html
    assert "/static/media_app/media.css" in html


def test_media_changelist_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    for kind in factories.OWNERS.values():
        factories.media(kind())
    url = reverse("admin:media_app_media_changelist")
    with django_assert_max_num_queries(30) as few:
        admin_client.get(url)
    for kind in factories.OWNERS.values():
        for _ in range(5):
            factories.media(kind())

    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(url)


def test_a_missing_owner_is_shown_as_missing(admin_client):
    tour = factories.tour()
    factories.media(tour)
    Media.objects.update(object_id="00000000-0000-0000-0000-000000000000")

    html = admin_client.get(reverse("admin:media_app_media_changelist")).content.decode()

    assert "missing (00000000-0000-0000-0000-000000000000)" in html


def test_delete_selected_owners_deletes_their_files(
    admin_client, backend, django_capture_on_commit_callbacks
):
    tours = [factories.tour() for _ in range(2)]
    names = [factories.media(tour).file.name for tour in tours]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:tours_tour_changelist"),
            {"action": "delete_selected", "_selected_action": [str(t.pk) for t in tours], "post": "yes"},
        )

    assert response.status_code == 302
    assert not Media.objects.exists()
    assert backend.missing(names) == names


@pytest.mark.django_db(transaction=True)
def test_run_history_is_listed_shown_and_read_only(admin_client, media_root):
    from media_app.cleanup.engine import run_cleanup

    result = run_cleanup()

    assert admin_client.get(reverse("admin:media_app_cleanuprun_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:media_app_cleanuprun_change", args=[result.run_id]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert result.run_id in page.content.decode() or str(result.status) in page.content.decode()
    assert admin_client.get(reverse("admin:media_app_cleanuprun_add")).status_code == 403


# -- "owner missing" and the action on selected media --------------------------------------------


@pytest.fixture
def orphan_and_live(media_root):
    """An orphaned media row (its owner deleted behind the ORM's back) and a live one."""
    gone = factories.tour()
    orphan = factories.media(gone, name="orphan.jpg")
    live = factories.media(factories.company(), name="live.jpg")
    factories.delete_behind_the_orms_back(gone)
    return orphan, live


def changelist_rows(client, **params):
    response = client.get(reverse("admin:media_app_media_changelist"), params)
    assert response.status_code == 200
    return {media.pk for media in response.context["cl"].result_list}


def test_owner_missing_filter_shows_only_orphaned_or_only_owned_media(admin_client, orphan_and_live):
    orphan, live = orphan_and_live

    assert changelist_rows(admin_client, owner_missing="yes") == {orphan.pk}
    assert changelist_rows(admin_client, owner_missing="no") == {live.pk}
    assert changelist_rows(admin_client) == {orphan.pk, live.pk}


def clean_up_selected(client, media, **kwargs):
    return client.post(
        reverse("admin:media_app_media_changelist"),
        {"action": "clean_up_orphaned_selection", "_selected_action": [str(m.pk) for m in media]},
        **kwargs,
    )


def page_messages(response):
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db(transaction=True)
def test_the_action_removes_the_selected_orphans_and_keeps_live_media(
    admin_client, orphan_and_live, media_root
):
    orphan, live = orphan_and_live

    response = clean_up_selected(admin_client, [orphan, live], follow=True)

    assert list(Media.objects.values_list("pk", flat=True)) == [live.pk]
    assert not (media_root / orphan.file.name).exists()
    assert (media_root / live.file.name).exists()
    assert page_messages(response) == [
        "Removed 1 of the 2 selected media whose owner is gone, with 1 files; kept 1."
    ]
    run = CleanupRun.objects.get()
    assert (run.trigger, run.status, run.options["media_ids"]) == ("admin", "ok", 2)


@pytest.mark.django_db(transaction=True)
def test_the_filter_shows_exactly_what_the_action_removes(admin_client, orphan_and_live):
    from django.contrib.contenttypes.models import ContentType
    from django.core.files.base import ContentFile

    stale_type = ContentType.objects.create(app_label="gone", model="thing")
    stale = Media.objects.create(
        content_type=stale_type, object_id=uuid.uuid4(), file=ContentFile(b"x", name="stale.jpg")
    )
    shown = changelist_rows(admin_client, owner_missing="yes")

    clean_up_selected(admin_client, Media.objects.all())

    assert shown == {orphan_and_live[0].pk}
    assert set(Media.objects.values_list("pk", flat=True)) == {orphan_and_live[1].pk, stale.pk}


@pytest.mark.django_db(transaction=True)
def test_the_action_reports_a_lock_held_by_another_run(admin_client, orphan_and_live):
    from media_app.cleanup.lock import cleanup_lock

    with cleanup_lock("default") as acquired:
        assert acquired
        response = clean_up_selected(admin_client, orphan_and_live, follow=True)

    assert Media.objects.count() == 2
    assert page_messages(response) == [
        "Another cleanup run holds the lock; nothing was done. Try again when it has finished."
    ]


@pytest.mark.django_db(transaction=True)
def test_the_action_refuses_a_selection_too_large_for_a_request(admin_client, orphan_and_live, monkeypatch):
    monkeypatch.setattr("media_app.admin.MAX_SELECTION", 1)

    response = clean_up_selected(admin_client, orphan_and_live, follow=True)

    assert Media.objects.count() == 2
    assert not CleanupRun.objects.exists()
    assert "Select at most 1 media" in page_messages(response)[0]


def test_the_action_is_offered_only_to_users_who_may_delete_media(client, orphan_and_live):
    url = reverse("admin:media_app_media_changelist")
    client.force_login(factories.staff_user("view_media"))
    assert "clean_up_orphaned_selection" not in client.get(url).content.decode()

    client.force_login(factories.staff_user("view_media", "delete_media"))
    assert "clean_up_orphaned_selection" in client.get(url).content.decode()


# -- the whole sweep from the admin: preview, confirm, report ------------------------------------

SWEEP_URL = "admin:media_app_cleanuprun_sweep"


def finished(run_id, timeout=90):
    """Wait until the run's history row exists and is no longer running; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = CleanupRun.objects.filter(pk=run_id).first()
        if run is not None and run.status != "running":
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def run_id_of(response):
    """Return the run id a POST that started a run redirected to."""
    assert response.status_code == 302, response.content.decode()[:2000]
    match = re.search(r"/([0-9a-f-]{36})/report/$", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def report(client, run_id):
    return client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id]))


@pytest.fixture
def drift(media_root):
    """A live media row, an orphaned one, a stray file 2 hours old and one 10 minutes old."""
    live = factories.media(factories.tour(), name="live.jpg")
    gone = factories.tour()
    orphan = factories.media(gone, name="orphan.jpg")
    factories.delete_behind_the_orms_back(gone)
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg", age_days=2 / 24)
    young = factories.stray_file(media_root, "uploads/tours/young.jpg", age_days=10 / 1440)
    return SimpleNamespace(live=live, orphan=orphan, stray=stray, young=young)


def preview(client, min_age="1h"):
    """Start a preview from the sweep page; return its finished history row."""
    response = client.post(reverse(SWEEP_URL), {"min_age": min_age})
    return finished(run_id_of(response))


@pytest.mark.django_db(transaction=True)
def test_the_preview_shows_counts_and_a_sample_and_deletes_nothing(admin_client, background_runs, drift):
    assert admin_client.get(reverse(SWEEP_URL)).status_code == 200

    run = preview(admin_client, min_age="1h")
    page = report(admin_client, run.pk)
    html = page.content.decode()

    assert (run.trigger, run.dry_run, run.status, run.options["min_age"]) == ("admin", True, "ok", 3600)
    assert (run.orphaned_records, run.orphaned_files, run.young_files) == (1, 1, 1)
    assert "uploads/tours/stray.jpg" in html and drift.orphan.file.name in html
    assert 'name="confirm"' in html and "same grace period (1h)" in html
    assert page_messages(page) == [f"Cleanup preview finished: {summary(run)}"]
    assert page_messages(report(admin_client, run.pk)) == []  # told once
    assert Media.objects.count() == 2
    assert drift.stray.exists() and drift.young.exists()
    assert "starting a dry run" in background_runs.read_text()


@pytest.mark.django_db(transaction=True)
def test_confirming_the_preview_removes_with_the_previews_grace_period(admin_client, background_runs, drift):
    run = preview(admin_client, min_age="1h")

    response = admin_client.post(reverse("admin:media_app_cleanuprun_confirm", args=[run.pk]))
    real = finished(run_id_of(response))
    page = report(admin_client, real.pk)

    assert (real.trigger, real.dry_run, real.status, real.options["min_age"]) == ("admin", False, "ok", 3600)
    assert (real.deleted_records, real.deleted_files) == (2 - 1, 2)  # the orphan's file and the stray
    assert list(Media.objects.values_list("pk", flat=True)) == [drift.live.pk]
    assert not drift.stray.exists()
    assert drift.young.exists()  # inside the grace period
    assert page_messages(page) == [f"Cleanup run finished: {summary(real)}"]
    assert 'name="confirm"' not in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_real_run_refused_by_the_cap_is_shown_and_removes_nothing(
    admin_client, background_runs, drift, media_root
):
    run = preview(admin_client)
    strays = [factories.stray_file(media_root, f"uploads/tours/more-{n}.jpg") for n in range(20)]

    real = finished(
        run_id_of(admin_client.post(reverse("admin:media_app_cleanuprun_confirm", args=[run.pk])))
    )
    html = report(admin_client, real.pk).content.decode()

    assert real.status == "refused"
    assert "refused by the safety cap" in html and "never lifts the safety cap" in html
    assert all(stray.exists() for stray in strays) and Media.objects.count() == 2


def history_row(**fields):
    return CleanupRun.objects.create(
        **{"trigger": "admin", "status": "ok", "started_at": timezone.now(), **fields}
    )


def test_only_a_finished_preview_that_found_something_can_be_confirmed(admin_client):
    unconfirmable = [
        history_row(dry_run=True, status="refused", deleted_files=30, options={"min_age": 0}),
        history_row(dry_run=True, status="ok", options={"min_age": 0}),
        history_row(dry_run=True, status="running", deleted_files=3, options={"min_age": 0}),
        history_row(dry_run=False, status="ok", deleted_files=3, options={"min_age": 0}),
    ]
    for run in unconfirmable:
        assert 'name="confirm"' not in report(admin_client, run.pk).content.decode()

        response = admin_client.post(
            reverse("admin:media_app_cleanuprun_confirm", args=[run.pk]), follow=True
        )

        assert page_messages(response) == [
            "Only a finished preview that found something to remove can be confirmed."
        ]
    assert CleanupRun.objects.count() == len(unconfirmable)


def test_the_report_page_follows_a_run_from_starting_to_running(admin_client):
    run_id = str(uuid.uuid4())
    assert report(admin_client, run_id).status_code == 404  # not one this session started

    session = admin_client.session
    session["media_cleanup_started_runs"] = {run_id: time.time()}
    session.save()
    starting = report(admin_client, run_id).content.decode()
    assert "Starting run" in starting and 'http-equiv="refresh"' in starting

    history_row(id=run_id, status="running", dry_run=True, files_checked=4096)
    running = report(admin_client, run_id).content.decode()
    assert "Running since" in running and 'http-equiv="refresh"' in running and "4096" in running


def test_the_report_page_says_when_a_run_never_started(admin_client, settings, tmp_path):
    settings.MEDIA_CLEANUP_LOG_FILE = str(tmp_path / "cleanup.log")
    run_id = str(uuid.uuid4())
    session = admin_client.session
    session["media_cleanup_started_runs"] = {run_id: time.time() - 600}
    session.save()

    html = report(admin_client, run_id).content.decode()

    assert "did not start" in html and str(tmp_path / "cleanup.log") in html
    assert 'http-equiv="refresh"' not in html


def test_users_who_may_not_delete_media_get_403_and_no_confirmation(client):
    preview_run = history_row(dry_run=True, deleted_files=3, options={"min_age": 3600})
    client.force_login(factories.staff_user("view_media", "view_cleanuprun", "change_media"))

    assert client.get(reverse(SWEEP_URL)).status_code == 403
    assert client.post(reverse(SWEEP_URL), {"min_age": "1h"}).status_code == 403
    assert (
        client.post(reverse("admin:media_app_cleanuprun_confirm", args=[preview_run.pk])).status_code == 403
    )
    page = report(client, preview_run.pk)
    assert page.status_code == 200 and 'name="confirm"' not in page.content.decode()
    assert CleanupRun.objects.count() == 1


def test_the_report_needs_the_view_permission_on_the_history_or_on_deleting_media(client):
    run = history_row()
    client.force_login(factories.staff_user("view_media", "change_media"))
    assert report(client, run.pk).status_code == 403

    client.force_login(factories.staff_user("view_media", "delete_media"))
    assert report(client, run.pk).status_code == 200


def test_starting_a_run_is_csrf_protected_and_post_only(admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    preview_run = history_row(dry_run=True, deleted_files=3, options={"min_age": 3600})

    assert client.post(reverse(SWEEP_URL), {"min_age": "1h"}).status_code == 403
    assert (
        client.post(reverse("admin:media_app_cleanuprun_confirm", args=[preview_run.pk])).status_code == 403
    )
    assert client.get(reverse("admin:media_app_cleanuprun_confirm", args=[preview_run.pk])).status_code == 405
    assert CleanupRun.objects.count() == 1


def test_a_grace_period_that_does_not_parse_is_refused_on_the_form(admin_client):
    response = admin_client.post(reverse(SWEEP_URL), {"min_age": "two days"})

    assert response.status_code == 200
    assert "invalid duration" in response.content.decode()
    assert not CleanupRun.objects.exists()


def test_the_sweep_page_is_linked_from_the_media_list_and_the_history(admin_client, client):
    sweep = reverse(SWEEP_URL)
    assert sweep in admin_client.get(reverse("admin:media_app_media_changelist")).content.decode()
    assert sweep in admin_client.get(reverse("admin:media_app_cleanuprun_changelist")).content.decode()

    client.force_login(factories.staff_user("view_media"))
    assert sweep not in client.get(reverse("admin:media_app_media_changelist")).content.decode()


def test_the_history_links_each_run_to_its_figures_and_errors_and_filters(admin_client):
    failed = history_row(
        status="errors", trigger="cron", error_count=1, errors=["uploads/x.jpg: permission denied"]
    )
    history_row(status="ok", trigger="command")
    changelist = reverse("admin:media_app_cleanuprun_changelist")

    html = admin_client.get(changelist).content.decode()
    filtered = admin_client.get(changelist, {"status__exact": "errors", "trigger__exact": "cron"})
    page = report(admin_client, failed.pk).content.decode()

    assert reverse("admin:media_app_cleanuprun_report", args=[failed.pk]) in html
    assert [run.pk for run in filtered.context["cl"].result_list] == [failed.pk]
    assert "uploads/x.jpg: permission denied" in page and "Status <strong>errors</strong>" in page


# -- restore a run from the admin: preview, confirm -----------------------------------------------


@pytest.fixture
def quarantined_run(media_root):
    """A real run that quarantined an orphaned row and its file; the owner is back since."""
    from media_app.cleanup.engine import run_cleanup

    owner = factories.tour()
    orphan = factories.media(owner, name="draft.jpg")
    factories.delete_behind_the_orms_back(owner)
    result = run_cleanup()
    owner.save(force_insert=True)
    return result.run_id, orphan, media_root / orphan.file.name


@pytest.mark.django_db(transaction=True)
def test_a_runs_report_offers_restore_and_the_preview_changes_nothing(client, quarantined_run):
    run_id, orphan, path = quarantined_run
    client.force_login(factories.staff_user("view_cleanuprun", "add_media"))

    report = client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id])).content.decode()
    preview = client.get(reverse("admin:media_app_cleanuprun_restore", args=[run_id])).content.decode()

    assert reverse("admin:media_app_cleanuprun_restore", args=[run_id]) in report
    assert (
        "removed <strong>1</strong>\n      file and <strong>1</strong>\n      row, as its manifest" in preview
    )
    assert not path.exists() and not Media.objects.filter(pk=orphan.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_confirming_restores_the_run(client, quarantined_run):
    run_id, orphan, path = quarantined_run
    client.force_login(factories.staff_user("view_cleanuprun", "add_media"))

    response = client.post(reverse("admin:media_app_cleanuprun_restore", args=[run_id]), follow=True)

    assert "Restore ok: 1 files and 1 rows put back" in page_messages(response)[0]
    assert path.exists() and Media.objects.filter(pk=orphan.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_users_who_may_not_add_media_cannot_restore(client, quarantined_run):
    run_id, orphan, path = quarantined_run
    client.force_login(factories.staff_user("view_cleanuprun", "delete_media"))
    url = reverse("admin:media_app_cleanuprun_restore", args=[run_id])

    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert (
        reverse("admin:media_app_cleanuprun_restore", args=[run_id])
        not in client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id])).content.decode()
    )
    assert not path.exists()


@pytest.mark.django_db(transaction=True)
def test_restoring_needs_a_csrf_token(quarantined_run):
    from django.test import Client

    run_id, _, path = quarantined_run
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.user(is_staff=True, is_superuser=True))

    assert client.post(reverse("admin:media_app_cleanuprun_restore", args=[run_id])).status_code == 403
    assert not path.exists()


# -- runs whose process died -------------------------------------------------------------------


def ended_process_id():
    """Return the id of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_run_started_from_the_admin_that_dies_before_its_engine_is_reported_at_once(
    admin_client, background_runs, monkeypatch
):
    # The run's own process cannot even load its settings, so it never writes a history row.
    monkeypatch.setenv("MEDIA_STORAGE", "no-such-storage")

    run_id = run_id_of(admin_client.post(reverse(SWEEP_URL), {"min_age": "1h"}))
    deadline = time.monotonic() + START_TIMEOUT / 2  # well before the page would give up waiting
    while "did not start" not in (html := report(admin_client, run_id).content.decode()):
        assert time.monotonic() < deadline, html
        time.sleep(0.2)

    assert 'http-equiv="refresh"' not in html
    assert "no-such-storage" in html.split('id="log-excerpt"')[1], "the run's own output is shown"
    assert not CleanupRun.objects.filter(pk=run_id).exists()


def test_a_running_row_whose_process_is_gone_is_shown_interrupted(admin_client, background_runs):
    run = history_row(status="running", host=socket.gethostname(), pid=ended_process_id())
    background_runs.parent.mkdir(parents=True, exist_ok=True)
    background_runs.write_text(
        f"2026-11-27T03:00:00+04:00 cleanup_media (admin): starting a run {run.pk}\nKilled\n"
    )

    html = report(admin_client, run.pk).content.decode()

    run.refresh_from_db()
    assert run.status == "interrupted" and run.finished_at is not None
    assert "Status <strong>interrupted</strong>" in html and "ended without recording its end" in html
    assert "Killed" in html and 'http-equiv="refresh"' not in html


def test_a_running_row_whose_process_lives_keeps_running(admin_client, background_runs):
    run_id = str(uuid.uuid4())
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--run-id={run_id}"])
    try:
        history_row(id=run_id, status="running", host=socket.gethostname(), pid=process.pid)

        html = report(admin_client, run_id).content.decode()

        assert CleanupRun.objects.get(pk=run_id).status == "running"
        assert "Running since" in html and 'http-equiv="refresh"' in html
    finally:
        process.kill()
        process.wait()


def test_a_running_row_of_another_host_is_left_to_the_next_sweep(admin_client):
    run = history_row(status="running", host="another-host", pid=ended_process_id())

    report(admin_client, run.pk)

    assert CleanupRun.objects.get(pk=run.pk).status == "running"


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.04, "0.0 s"),
        (0.44, "0.4 s"),
        (12.4, "12 s"),
        (185, "3 min 5 s"),
        (120, "2 min"),
        (7800, "2 h 10 min"),
        (97200, "1 d 3 h"),
    ],
)
def test_durations_read_as_a_person_reads_them(seconds, text):
    assert readable_duration(seconds) == text


def test_the_history_and_the_report_show_rounded_durations(admin_client):
    run = history_row(duration_seconds=185.123456)

    listing = admin_client.get(reverse("admin:media_app_cleanuprun_changelist")).content.decode()
    page = report(admin_client, run.pk).content.decode()

    assert "3 min 5 s" in listing and "185.12" not in listing
    assert "took 3 min 5 s" in page


@pytest.mark.parametrize("min_age", ["99999999999d", "3651d"])
def test_a_grace_period_beyond_ten_years_is_refused_on_the_form(admin_client, min_age):
    response = admin_client.post(reverse(SWEEP_URL), {"min_age": min_age})

    assert response.status_code == 200
    assert "at most 3650d (ten years)" in response.content.decode()
    assert not CleanupRun.objects.exists()


# -- names in any script, through the inline ----------------------------------------------------

SCRIPT_NAMES = {
    "georgian": "ა" * 98 + ".jpg",
    "russian": "Вид_на_Нарикалу_с_канатной_дороги_" * 7 + ".jpg",
    "emoji": "Закат 🌄🇬🇪👍🏽" * 12 + ".jpg",
    "combining": "q\u0323\u0307" * 80 + ".jpg",
    "nfd": unicodedata.normalize("NFD", "Ёлка_в_Тбилиси_" * 12 + ".jpg"),
}


@pytest.mark.parametrize("script", sorted(SCRIPT_NAMES))
def test_a_photo_named_in_any_script_is_stored_through_the_inline(admin_client, backend, script):
    sent = SCRIPT_NAMES[script]
    photo = factories.image_bytes()

    tour, response = post_tour_with_upload(admin_client, sent, photo)

    assert response.status_code == 302, response.content.decode()[:2000]
    media = tour.media.get()
    assert media.original_name == unicodedata.normalize("NFC", sent)
    folder, component = media.file.name.rsplit("/", 1)
    assert folder == "uploads/tours"
    # <16 hex>-<name> within 255 bytes, with room left for the suffix of a taken name.
    assert 17 + len(".jpg") < len(component.encode()) <= 255 - 8
    assert backend.names() == [media.file.name]
    assert backend.read(media.file.name) == photo


# -- the size limit, while the upload streams in ------------------------------------------------


def test_a_photo_just_over_the_limit_gets_the_size_error_and_stores_nothing(admin_client, backend, settings):
    photo = factories.image_bytes()
    settings.MEDIA_UPLOAD_MAX_BYTES = len(photo) - 1

    tour, response = post_tour_with_upload(admin_client, "vineyard.jpg", photo)

    assert response.status_code == 200
    expected = f"This file is {len(photo)}\xa0bytes; the limit is {len(photo) - 1}\xa0bytes."
    assert expected in response.content.decode()
    assert not tour.media.exists()
    assert backend.names() == []


def test_a_photo_just_within_the_limit_is_stored(admin_client, backend, settings):
    photo = factories.image_bytes()
    settings.MEDIA_UPLOAD_MAX_BYTES = len(photo)

    tour, response = post_tour_with_upload(admin_client, "vineyard.jpg", photo)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert backend.read(tour.media.get().file.name) == photo


def test_nothing_past_the_limit_reaches_a_temporary_file_and_nothing_of_it_stays(
    admin_client, settings, tmp_path
):
    temporary = tmp_path / "uploads-in-progress"
    temporary.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temporary)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temporary file
    settings.FILE_UPLOAD_HANDLERS = [
        settings.FILE_UPLOAD_HANDLERS[0],
        "tests.test_uploads.RecordingUploadHandler",
    ]
    RecordingUploadHandler.files = []
    settings.MEDIA_UPLOAD_MAX_BYTES = 100_000
    big = factories.image_bytes() + b"0" * 300_000

    tour, response = post_tour_with_upload(admin_client, "panorama.jpg", big)

    assert response.status_code == 200
    assert f"This file is {len(big) / 1024:.1f}\xa0KB; the limit is 97.7\xa0KB." in response.content.decode()
    [kept] = RecordingUploadHandler.files
    assert 0 < kept <= 100_000
    # The request lives as long as its response: what its handlers kept would still be there.
    assert response.wsgi_request and list(temporary.iterdir()) == []
    assert not tour.media.exists()


def test_a_long_extension_in_any_script_gets_the_type_error_not_a_crash(admin_client, settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # Django names its temporary file with the extension
    name = "photo." + "ჯ" * 80  # 246 bytes: a name the file system allows

    tour, response = post_tour_with_upload(admin_client, name, factories.image_bytes())

    assert response.status_code == 200
    assert "This file is not an allowed type" in response.content.decode()
    assert not tour.media.exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_the_report_finds_interrupted_is_announced(admin_client, background_runs):
    from media_app.cleanup.history import run_ended

    run = history_row(status="running", host=socket.gethostname(), pid=ended_process_id())
    seen = []
    run_ended.connect(
        lambda sender, run, **kwargs: seen.append((run.pk, run.status)), weak=False, dispatch_uid="t"
    )
    try:
        report(admin_client, run.pk)
        report(admin_client, run.pk)  # announced once, when it was found
    finally:
        run_ended.disconnect(dispatch_uid="t")

    assert seen == [(run.pk, "interrupted")]


# -- the charts atop the run history ---------------------------------------------------------------

CHANGELIST = "admin:media_app_cleanuprun_changelist"


def charts_html(response):
    """Return the charts' part of the run history's page."""
    html = response.content.decode()
    start = html.index('<details class="run-charts"')
    return html[start : html.index("</details>", start) + len("</details>")]


def days_ago(days):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def history_of_runs(settings):
    """Real runs within a 30-day retention, and the runs the charts leave out, each with its own figure."""
    settings.MEDIA_CLEANUP_HISTORY_DAYS = 30
    charted = [
        history_row(trigger="cron", started_at=days_ago(3), storage_files=1234, duration_seconds=12.0),
        history_row(trigger="cron", started_at=days_ago(2), status="failed", storage_files=0),
        history_row(trigger="cron", started_at=days_ago(1), status="refused", storage_files=1250),
        history_row(trigger="cron", started_at=days_ago(0.5), storage_files=1300, duration_seconds=14.0),
    ]
    left_out = {
        "older than the retention": history_row(started_at=days_ago(31), storage_files=9991),
        "a preview": history_row(dry_run=True, started_at=days_ago(1), storage_files=7777),
        "found the lock held": history_row(status="locked", started_at=days_ago(1), storage_files=9992),
        "still running": history_row(status="running", started_at=days_ago(0.1), storage_files=9993),
        "the action on a selection": history_row(
            started_at=days_ago(1), storage_files=9994, options={"media_ids": 2}
        ),
    }
    return charted, left_out


def test_the_history_opens_with_charts_of_its_real_runs_in_the_retention(admin_client, history_of_runs):
    charts = charts_html(admin_client.get(reverse(CHANGELIST)))

    assert charts.count('<figure class="chart"') == 7
    assert "Real runs of the last 30 days: 4 charted" in charts
    assert "Latest run" in charts and "files under uploads/ 1,300" in charts
    assert "1,234" in charts and "run refused by the safety cap" in charts and "run failed" in charts
    assert not re.search(r"9,99\d|7,777", charts)


def test_the_dry_run_filter_charts_the_previews_instead(admin_client, history_of_runs):
    previews = charts_html(admin_client.get(reverse(CHANGELIST), {"dry_run__exact": "1"}))
    real_ok = charts_html(admin_client.get(reverse(CHANGELIST), {"status__exact": "ok"}))

    assert "Previews of the last 30 days: 1 charted" in previews
    assert "7,777" in previews and "1,300" not in previews
    # The other filters narrow the list, not the trend: a failed run stays marked.
    assert "run failed" in real_ok and "4 charted" in real_ok


def test_without_runs_the_history_says_so_in_words(admin_client):
    charts = charts_html(admin_client.get(reverse(CHANGELIST)))

    assert "No real runs in the last 90 days: nothing to chart yet." in charts
    assert 'class="chart"' not in charts


def test_a_retention_of_zero_days_charts_the_last_day(admin_client, settings):
    settings.MEDIA_CLEANUP_HISTORY_DAYS = 0
    history_row(started_at=days_ago(0.5), storage_files=42)
    history_row(started_at=days_ago(2), storage_files=43)

    charts = charts_html(admin_client.get(reverse(CHANGELIST)))

    assert "Real runs of the last 1 day: 1 charted" in charts and "files under uploads/ 42" in charts


def test_the_charts_take_one_query_however_many_runs(
    admin_client, rf, django_assert_num_queries, django_assert_max_num_queries
):
    history_row(started_at=days_ago(1))
    with django_assert_max_num_queries(30) as one_run:
        admin_client.get(reverse(CHANGELIST))
    for day in range(60):
        history_row(started_at=days_ago(day + 0.5), status=["ok", "failed", "errors"][day % 3])

    with django_assert_num_queries(1):
        context = run_charts(rf.get(reverse(CHANGELIST)))
    with django_assert_max_num_queries(len(one_run.captured_queries)):
        admin_client.get(reverse(CHANGELIST))

    assert context["runs"] == 61 and len(context["charts"]) == 7


def test_the_charts_need_no_inline_style_or_script(admin_client, history_of_runs):
    charts = charts_html(admin_client.get(reverse(CHANGELIST)))

    assert not re.search(r"style\s*=|<style|<script|\son\w+\s*=", charts, re.IGNORECASE)
    assert "media_app/charts.css" in admin_client.get(reverse(CHANGELIST)).content.decode()


def test_each_chart_is_labelled_for_screen_readers(admin_client, history_of_runs):
    charts = charts_html(admin_client.get(reverse(CHANGELIST)))

    for slug in ["storage-files", "storage-bytes", "found", "removed", "freed", "duration", "errors"]:
        assert f'aria-labelledby="chart-{slug}-title chart-{slug}-desc"' in charts
        assert f'<title id="chart-{slug}-title">' in charts and f'<desc id="chart-{slug}-desc">' in charts
    assert "<figcaption>Files in storage</figcaption>" in charts


def test_a_bad_filter_still_redirects_without_charts(admin_client, history_of_runs):
    response = admin_client.get(reverse(CHANGELIST), {"no_such_field": "1"})

    assert response.status_code == 302 and response.url.endswith("?e=1")


def test_a_history_of_too_many_runs_charts_the_latest(admin_client, monkeypatch):
    monkeypatch.setattr("media_app.admin_charts.MAX_RUNS", 3)
    for day, files in enumerate([9991, 1201, 1202, 1203]):
        history_row(started_at=days_ago(4 - day), storage_files=files)

    charts = charts_html(admin_client.get(reverse(CHANGELIST)))

    assert "the latest 3 charted, older ones left out" in charts
    assert "files under uploads/ from 1,201 to 1,203" in charts and "9,991" not in charts
