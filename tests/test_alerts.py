"""Alerts: a real run that ends badly mails ADMINS once, through a real SMTP server or Django's locmem."""

import json
import socket
import time
from datetime import timedelta
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from media_app.cleanup.engine import run_cleanup
from media_app.models import CleanupRun
from mediaproject.environment import Env
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

ADMINS = [("Tamar Beridze", "tamar@example.ge"), ("", "ops@example.ge")]
ADMINS_VARIABLE = "Tamar Beridze <tamar@example.ge>, ops@example.ge"
SITE_URL = "https://media.example.ge"
DEFAULT_ALERTS = ["failed", "errors", "refused", "interrupted"]
ANNOUNCED = ["ok", "partial", *DEFAULT_ALERTS]


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts, with its envelope's recipients."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        message.recipients = list(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def body(message):
    """Return a received message's text, with the line ends it was written with (SMTP sends CRLF)."""
    return message.get_content().replace("\r\n", "\n")


def free_port():
    """Return a loopback port that nothing listens on (the system's pick, closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """Run a real SMTP server on loopback for the test; yield its URL and the messages it received."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SimpleNamespace(url=f"smtp://127.0.0.1:{controller.port}", messages=inbox.messages)
    finally:
        controller.stop()


def use_email_url(url, settings, monkeypatch):
    """Apply ``EMAIL_URL=url`` to the settings as the settings module reads it."""
    monkeypatch.setenv("EMAIL_URL", url)
    for name, value in Env().email_url("EMAIL_URL", default="").items():
        setattr(settings, name, value)


@pytest.fixture(params=["smtp", "locmem"])
def mailbox(request, settings, monkeypatch):
    """Send alerts to ADMINS through a real SMTP server or Django's locmem; return their reader."""
    settings.ADMINS = ADMINS
    settings.SERVER_EMAIL = "Tours <tours@example.ge>"
    settings.SITE_URL = SITE_URL
    if request.param == "smtp":
        server = request.getfixturevalue("smtp_server")
        use_email_url(server.url, settings, monkeypatch)
        return lambda: server.messages
    outbox = request.getfixturevalue("mailoutbox")

    def read():
        messages = []
        for sent in outbox:
            message = message_from_bytes(sent.message().as_bytes(), policy=policy.default)
            message.recipients = sent.recipients()
            messages.append(message)
        return messages

    return read


# -- runs that end with each status, driven through run_cleanup() for real ------------------------


def refused_run(media_root, settings):
    """Twenty files and no row: the safety cap refuses the run."""
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")
    return run_cleanup()


def failed_run(media_root, settings):
    """A quarantine inside MEDIA_ROOT: the run cannot go on."""
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = str(media_root / "quarantine")
    factories.stray_file(media_root, "uploads/tours/stray.jpg")
    return run_cleanup()


def errors_run(media_root, settings, strays=1):
    """A storage whose deletes fail: every file the run removes is an error."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 100
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "tests.storages.FailingDeleteStorage"}}
    for number in range(strays):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")
    return run_cleanup()


def interrupted_run(media_root, settings):
    """A run left ``running`` (its process killed): the next run finds it and marks it interrupted."""
    CleanupRun.objects.create(
        status="running", started_at=timezone.now() - timedelta(hours=1), host=socket.gethostname(), pid=4242
    )
    return run_cleanup()


def ok_run(media_root, settings):
    return run_cleanup()


RUNS = {
    "refused": refused_run,
    "failed": failed_run,
    "errors": errors_run,
    "interrupted": interrupted_run,
    "ok": ok_run,
}


@pytest.mark.parametrize("status", DEFAULT_ALERTS)
def test_each_status_chosen_by_default_sends_one_message_to_the_admins(mailbox, media_root, settings, status):
    RUNS[status](media_root, settings)

    (message,) = mailbox()
    assert CleanupRun.objects.filter(status=status).count() == 1
    assert message["Subject"] == f"[Django] Cleanup run {status} on {socket.gethostname()}"
    assert message.recipients == ["tamar@example.ge", "ops@example.ge"]
    assert message["From"] == "Tours <tours@example.ge>"
    assert f"A cleanup run ended with the status {status}." in body(message)


@pytest.mark.parametrize("status", DEFAULT_ALERTS)
def test_a_status_not_chosen_sends_nothing(mailbox, media_root, settings, status):
    settings.MEDIA_CLEANUP_ALERT_ON = [other for other in DEFAULT_ALERTS if other != status]

    RUNS[status](media_root, settings)

    assert CleanupRun.objects.filter(status=status).count() == 1
    assert mailbox() == []


def test_a_run_that_went_well_alerts_only_when_chosen(mailbox, media_root, settings):
    ok_run(media_root, settings)
    assert mailbox() == []

    settings.MEDIA_CLEANUP_ALERT_ON = ["ok"]
    ok_run(media_root, settings)

    (message,) = mailbox()
    assert message["Subject"] == f"[Django] Cleanup run ok on {socket.gethostname()}"


def test_a_dry_run_never_alerts(mailbox, media_root, settings):
    settings.MEDIA_CLEANUP_ALERT_ON = ANNOUNCED
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")

    refused = run_cleanup(dry_run=True)
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = str(media_root / "quarantine")
    failed = run_cleanup(dry_run=True)

    assert (refused.status, failed.status) == ("refused", "failed")
    assert mailbox() == []


def test_without_admins_nothing_is_sent(mailoutbox, media_root, settings):
    settings.ADMINS = []

    refused_run(media_root, settings)

    assert mailoutbox == []


def test_the_message_holds_the_status_figures_first_errors_host_and_link(mailbox, media_root, settings):
    result = errors_run(media_root, settings, strays=12)

    (message,) = mailbox()
    text = body(message)
    assert result.status == "errors" and result.error_count == 12
    assert "Status:   errors" in text
    assert f"Host:     {socket.gethostname()} (process " in text
    assert "Trigger:  code" in text
    assert f"Report:   {SITE_URL}/admin/media_app/cleanuprun/{result.run_id}/report/\n" in text
    assert "errors: checked 0 rows and 12 files; found 0 orphaned rows, 12 orphaned files" in text
    assert "  files checked:      12\n" in text
    assert "  orphaned files:     12\n" in text
    assert "  error count:        12\n" in text
    assert "First errors (10 of 12):" in text
    assert all(error in text for error in result.errors[:10])
    assert result.errors[10] not in text and result.errors[11] not in text


def test_without_site_url_the_message_gives_the_admins_path_and_says_the_setting_is_unset(
    mailoutbox, media_root, settings
):
    settings.ADMINS = ADMINS
    settings.SITE_URL = ""

    result = refused_run(media_root, settings)

    (message,) = mailoutbox
    assert (
        f"Report:   /admin/media_app/cleanuprun/{result.run_id}/report/ "
        "(SITE_URL is unset: set it to the site's address for a full link)"
    ) in message.body


def test_a_run_found_interrupted_is_told_with_when_it_started_and_no_end(mailoutbox, media_root, settings):
    settings.ADMINS = ADMINS

    interrupted_run(media_root, settings)

    (message,) = mailoutbox
    run = CleanupRun.objects.get(status="interrupted")
    assert f"Started:  {timezone.localtime(run.started_at):%Y-%m-%d %H:%M:%S +04}" in message.body
    assert "Finished: not recorded" in message.body
    assert "stopped before it finished" in message.body


# -- a mail server that fails changes nothing ------------------------------------------------------


def test_a_mail_server_that_refuses_changes_nothing_and_is_one_log_line(
    media_root, settings, monkeypatch, caplog
):
    settings.ADMINS = ADMINS
    use_email_url(f"smtp://127.0.0.1:{free_port()}", settings, monkeypatch)

    result = refused_run(media_root, settings)

    assert (result.status, result.exit_code) == ("refused", 1)
    assert CleanupRun.objects.get().status == "refused"
    (logged,) = [record for record in caplog.records if "alert" in record.getMessage()]
    assert logged.getMessage().startswith(
        f"Could not send the alert of cleanup run {result.run_id} (refused) "
    )
    assert "ConnectionRefusedError" in logged.getMessage()
    assert logged.exc_info is None and "\n" not in logged.getMessage()


def test_a_mail_server_that_never_answers_holds_the_run_no_longer_than_email_timeout(
    media_root, settings, monkeypatch, caplog
):
    settings.ADMINS = ADMINS
    with socket.socket() as silent:
        # Connections queue in its backlog and are never greeted.
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        use_email_url(f"smtp://127.0.0.1:{silent.getsockname()[1]}", settings, monkeypatch)
        settings.EMAIL_TIMEOUT = 1
        started = time.monotonic()

        result = refused_run(media_root, settings)

        took = time.monotonic() - started
    assert result.status == "refused" and took < 10
    (logged,) = [record for record in caplog.records if "Could not send the alert" in record.getMessage()]
    assert "timed out" in logged.getMessage()


# -- through a real `manage.py cleanup_media` ------------------------------------------------------


def test_a_cleanup_media_process_mails_the_admins_through_smtp(manage_py, media_root, smtp_server):
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")

    done = manage_py(
        "cleanup_media",
        env={
            "EMAIL_URL": smtp_server.url,
            "ADMINS": ADMINS_VARIABLE,
            "SERVER_EMAIL": "tours@example.ge",
            "SITE_URL": SITE_URL,
        },
    )

    assert done.returncode == 1, done.stderr
    run = CleanupRun.objects.get()
    (message,) = smtp_server.messages
    assert message.recipients == ["tamar@example.ge", "ops@example.ge"]
    assert message["Subject"] == f"[Django] Cleanup run refused on {socket.gethostname()}"
    assert f"{SITE_URL}/admin/media_app/cleanuprun/{run.pk}/report/" in body(message)
    assert "refused by the safety cap" in body(message)


def test_a_mail_server_out_of_reach_changes_no_exit_code_and_logs_one_line(manage_py, media_root):
    environment = {
        "EMAIL_URL": f"smtp://127.0.0.1:{free_port()}",
        "ADMINS": ADMINS_VARIABLE,
        "MEDIA_CLEANUP_ALERT_ON": "ok",
    }

    done = manage_py("cleanup_media", env=environment)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "alert" in line]
    assert "ERROR media_app.alerts: Could not send the alert of cleanup run" in line
    assert "(ok) to ADMINS: ConnectionRefusedError" in line


def test_the_console_backend_writes_to_stderr_so_that_json_output_stays_json(manage_py, media_root):
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")

    console = {"EMAIL_URL": "consolemail://", "ADMINS": "ops@example.ge"}

    done = manage_py("cleanup_media", "--json", env=console)

    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "refused"
    assert "Subject: [Django] Cleanup run refused on" in done.stderr
