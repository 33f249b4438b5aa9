"""End to end in a real browser: Playwright drives Debian's Chromium against the live server.

Each test saves a screenshot of its key page: under ``docs/screenshots/`` for docs/testing.md when
``SCREENSHOTS_DIR`` says so (``make screenshots``), else in a temporary folder, so that a test
run leaves the working copy as it was.
"""

import os
import re
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from media_app.models import CleanupRun, Media
from tests import factories
from tests.conftest import require_tool

# Playwright's sync API keeps an event loop running in the test's thread, and Django refuses ORM
# calls from a thread with a running loop; the tests and fixtures here query the database there.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# CHROMIUM_EXECUTABLE names another binary; a path that does not exist shows the skip.
CHROMIUM = os.environ.get("CHROMIUM_EXECUTABLE", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling out, which this machine refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "tour-media-screenshots"
)
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "browser-test-password"
INLINE_FILE = "media_app-media-content_type-object_id-0-file"
# A run from the admin is a new process that starts Django: allow it a generous while.
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def browser():
    """Launch Debian's Chromium once a session; without it skip, or fail under REQUIRE_SYSTEM_DEPS=1."""
    executable = require_tool(CHROMIUM, needed_for="the browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """Open a page in a fresh context (no cookies) whose relative URLs go to the live server."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(10_000)
    # The admin's navigation sidebar closed, as its toggle leaves it: the screenshots show the page.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    yield context.new_page()
    context.close()


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)


def log_in(page, username, screenshot_name=""):
    """Log in through the admin's login form; save the filled form as a screenshot when named."""
    page.goto(reverse("admin:login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    if screenshot_name:
        screenshot(page, screenshot_name)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text("Log out")


def screenshot(page, name, **options):
    """Save the whole page (or what ``options`` say) as ``<SCREENSHOTS>/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    options = {"full_page": True, "animations": "disabled", **options}
    page.screenshot(path=SCREENSHOTS / f"{name}.png", **options)


def upload(page, name, content):
    """Choose a file for the first inline form; the browser claims what its name says, a JPEG."""
    page.locator(f'input[name="{INLINE_FILE}"]').set_input_files(
        {"name": name, "mimeType": "image/jpeg", "buffer": content}
    )


def test_an_admin_logs_in_adds_a_company_and_a_tour_and_uploads_a_photo(page, superuser, media_root):
    log_in(page, superuser.username, screenshot_name="01-login")

    page.goto(reverse("admin:tours_company_add"))
    page.get_by_label("Name").fill("Caucasus Trails")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    page.goto(reverse("admin:tours_tour_add"))
    # Typed key by key: the admin's JavaScript fills the slug in on each keyup.
    page.get_by_label("Title").press_sequentially("Kazbegi day trip")
    expect(page.get_by_label("Slug")).to_have_value("kazbegi-day-trip")
    page.get_by_label("Price (GEL)").fill("120.00")
    page.get_by_label("Company").select_option(label="Caucasus Trails")
    photo = factories.image_bytes(size=(240, 160))
    upload(page, "Gergeti Trinity.jpg", photo)
    page.locator('input[name$="-0-caption"]').fill("Gergeti Trinity Church")
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    thumbnail = page.locator("td.field-thumbnail img")
    thumbnail.scroll_into_view_if_needed()
    # decode() settles once the image has loaded from the server: a broken thumbnail rejects it.
    assert thumbnail.evaluate("img => img.decode().then(() => img.naturalWidth)") == 240
    media = Media.objects.get()
    assert media.content_object.company.name == "Caucasus Trails"
    assert (media_root / media.file.name).read_bytes() == photo
    screenshot(page, "02-tour-with-upload")


def test_a_rejected_upload_shows_its_error_and_writes_nothing(page, superuser, media_root):
    tour = factories.tour(title="Kakheti wine tour", slug="kakheti-wine-tour")
    log_in(page, superuser.username)
    page.goto(reverse("admin:tours_tour_change", args=[tour.pk]))

    upload(page, "invoice.jpg", b"<html><script>alert(1)</script></html>")
    page.get_by_role("button", name="Save and continue editing").click()

    error = page.locator(".inline-group .errorlist")
    expect(error).to_contain_text("This file is not an allowed type")
    error.scroll_into_view_if_needed()
    assert not tour.media.exists()
    assert not (media_root / "uploads").exists()
    screenshot(page, "03-rejected-upload")


def test_deleting_a_tour_removes_its_file_from_disk(page, superuser, media_root):
    tour = factories.tour(title="Old Tbilisi walk")
    path = media_root / factories.media(tour, name="narikala.jpg", content=factories.image_bytes()).file.name
    assert path.exists()
    log_in(page, superuser.username)

    page.goto(reverse("admin:tours_tour_change", args=[tour.pk]))
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_role("button", name=re.compile("Yes, I.m sure")).click()

    expect(page.locator(".messagelist")).to_contain_text("was deleted successfully")
    assert not Media.objects.exists()
    assert not path.exists()


def run_state(page):
    return page.locator("#run-state")


def test_the_sweep_preview_confirmed_removes_the_drift_and_is_in_the_history(
    page, superuser, background_runs, media_root, quarantine_root
):
    live = [factories.media(factories.tour(), name=f"live-{n}.jpg") for n in range(4)]
    gone = factories.tour()
    orphans = [factories.media(gone, name=f"orphan-{n}.jpg") for n in range(2)]
    factories.delete_behind_the_orms_back(gone)
    strays = [factories.stray_file(media_root, f"uploads/tours/stray-{n}.jpg") for n in range(2)]
    log_in(page, superuser.username)

    page.goto(reverse("admin:media_app_media_changelist"))
    page.get_by_role("link", name="Sweep storage").click()
    page.get_by_label("Grace period for files").fill("0")
    page.get_by_role("button", name="Preview").click()

    expect(run_state(page)).to_contain_text("Status ok (a preview", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#sample")).to_contain_text("uploads/tours/stray-0.jpg")
    expect(page.locator("#sample")).to_contain_text(orphans[0].file.name)
    assert Media.objects.count() == 6 and all(stray.exists() for stray in strays)
    screenshot(page, "04-sweep-preview")

    page.get_by_role("button", name="Remove for real").click()

    expect(run_state(page)).to_contain_text("Status ok,", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".messagelist")).to_contain_text("Cleanup run finished")
    real_id = re.search(r"/([0-9a-f-]{36})/report/$", page.url).group(1)
    assert set(Media.objects.values_list("pk", flat=True)) == {media.pk for media in live}
    removed = [*strays, *(media_root / orphan.file.name for orphan in orphans)]
    assert not any(path.exists() for path in removed)
    assert {path.name for path in removed} <= {path.name for path in quarantine_root.rglob("*.jpg")}
    screenshot(page, "05-run-report")

    page.get_by_role("link", name="Run history", exact=True).click()

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'#result_list a[href$="/{real_id}/report/"]')).to_be_visible()
    assert CleanupRun.objects.get(pk=real_id).deleted_files == 4
    screenshot(page, "06-run-history")


def test_a_staff_user_who_may_not_delete_media_is_refused(page, media_root):
    clerk = factories.staff_user(
        "view_media", "change_media", "view_cleanuprun", username="clerk", password=PASSWORD
    )
    gone = factories.tour()
    factories.media(gone, name="orphan.jpg")
    factories.delete_behind_the_orms_back(gone)
    log_in(page, clerk.username)

    page.goto(reverse("admin:media_app_media_changelist"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator('option[value="clean_up_orphaned_selection"]')).to_have_count(0)
    expect(page.get_by_role("link", name="Sweep storage")).to_have_count(0)

    response = page.goto(reverse("admin:media_app_cleanuprun_sweep"))

    assert response.status == 403
    expect(page.locator("body")).to_contain_text("403 Forbidden")
    assert Media.objects.count() == 1 and not CleanupRun.objects.exists()
    screenshot(page, "07-refused", clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": 120})


# A strict policy, as a site would send it: no inline script or style, nothing from elsewhere.
CONTENT_SECURITY_POLICY = "default-src 'self'"


def sweep_history(days=30):
    """Record a sweep a night for ``days`` nights, the storage growing, with one run of each marked kind."""
    marked = {6: "failed", 13: "refused", 20: "interrupted"}
    today = timezone.localdate()
    for night in range(days):
        started_at = datetime.combine(
            today - timedelta(days=days - 1 - night), time(3), tzinfo=timezone.get_current_timezone()
        )
        status = marked.get(night, "errors" if night % 9 == 4 else "ok")
        found = (night * 37 + 11) % 23 % 6 + 1
        removed = 0 if status in ("refused", "failed") else found
        figures = {
            "storage_files": 0 if status == "failed" else 1180 + 3 * night - removed,
            "storage_bytes": 0 if status == "failed" else (2300 + 11 * night) * 1024**2,
            "quarantine_bytes": (40 + 3 * removed * (night % 7)) * 1024**2,
            "orphaned_records": (night * 29 + 5) % 13 % 3,
            "orphaned_files": 400 if status == "refused" else found,
            "missing_files": 1 if night % 11 == 3 else 0,
            "deleted_records": 0 if removed == 0 else (night * 29 + 5) % 13 % 3,
            "deleted_files": removed,
            "bytes_freed": removed * 2700 * 1024,
            "error_count": {"errors": 2, "failed": 1}.get(status, 0),
        }
        CleanupRun.objects.create(
            trigger="cron",
            status=status,
            started_at=started_at,
            duration_seconds=None if status == "interrupted" else 40.0 + (night * 13) % 17,
            **figures,
        )
        if night % 10 == 0:
            CleanupRun.objects.create(
                trigger="admin", status="ok", dry_run=True, started_at=started_at, **figures
            )


def test_the_run_history_opens_with_charts_that_keep_to_a_strict_content_security_policy(page, superuser):
    sweep_history()
    changelist = reverse("admin:media_app_cleanuprun_changelist")
    # Chromium reports each violation on the console and as a securitypolicyviolation event.
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(
        "window.violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " event => window.violations.push(event.violatedDirective + ' ' + event.blockedURI));"
    )

    def with_policy(route):
        response = route.fetch()
        route.fulfill(
            response=response,
            headers={**response.headers, "content-security-policy": CONTENT_SECURITY_POLICY},
        )

    log_in(page, superuser.username)
    page.route(re.compile(re.escape(changelist) + r"(\?.*)?$"), with_policy)
    response = page.goto(changelist)

    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    expect(page.locator("#run-charts figure.chart")).to_have_count(7)
    expect(page.locator("#run-charts summary")).to_contain_text("Real runs of the last 90 days: 30 charted")
    # Named by its title and its description, which a screen reader reads out.
    files = page.locator("#chart-storage-files svg[role=img]")
    expect(files).to_be_visible()
    expect(files).to_have_accessible_name(
        re.compile(r"^Files in storage Latest run, .+: files under uploads/ 1,2\d\d\. 30 runs from ")
    )
    legend = page.locator("#chart-errors .chart-legend")
    for words in ["errors", "run failed", "run refused by the safety cap", "run interrupted"]:
        expect(legend).to_contain_text(words)
    # The stylesheet applied: the charts share the width in columns.
    assert (
        page.locator("#run-charts .run-charts-grid").evaluate("grid => getComputedStyle(grid).display")
        == "grid"
    )
    assert page.evaluate("window.violations") == []
    assert [text for text in console if "Content Security Policy" in text] == []
    bottom = page.locator("#run-charts").bounding_box()
    screenshot(
        page,
        "08-run-history-charts",
        clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom["y"] + bottom["height"] + 12},
    )
