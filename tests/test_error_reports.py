import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import path

from mediaproject.environment import redact

DATABASE_URL = "postgres://tours:hunter2@db.example.ge:5432/tours"


def failing_view(request):
    """Fail with the kinds of local variables that hold a database's password.

    They come from the request, so that the page's excerpt of this source shows no password.
    """
    dsn = request.META["DATABASE_URL"]
    password = urlsplit(dsn).password
    conn_params = {"user": "tours", "password": password, "host": "db.example.ge"}
    conninfo = f"dbname=tours user=tours password={password} host=db.example.ge"
    raise RuntimeError(f"cannot reach {len(dsn + conninfo) + len(conn_params)} things")


urlpatterns = [path("fail/", failing_view)]


@pytest.fixture
def failing_site(settings):
    settings.ROOT_URLCONF = __name__
    settings.REPLICA_LOCATION = DATABASE_URL.replace("tours:", "backup:")
    settings.SENTRY_DSN = "https://public-key@o1.ingest.example.ge/1"
    return Client(raise_request_exception=False)


def test_the_debug_page_hides_the_database_password_and_shows_the_rest(failing_site, settings):
    settings.DEBUG = True

    response = failing_site.get(
        "/fail/", DATABASE_URL=DATABASE_URL, HTTP_REFERER="https://ana:secret7@example.ge/"
    )

    page = response.content.decode()
    assert response.status_code == 500 and "RuntimeError" in page
    assert "hunter2" not in page and "secret7" not in page and "public-key" not in page
    assert "backup:***@db.example.ge:5432/tours" in page  # a setting that is not a secret by name
    assert "https://ana:***@example.ge/" in page  # a request header
    assert "password=***" in page  # a connection string in a frame
    assert "db.example.ge" in page and "DATABASE_URL" in page


def test_the_report_mailed_to_the_admins_hides_the_database_password(failing_site, settings):
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.ge")]

    response = failing_site.get("/fail/", DATABASE_URL=DATABASE_URL)

    assert response.status_code == 500
    (report,) = mail.outbox
    assert "RuntimeError" in report.body and "DATABASE_URL" in report.body
    assert "hunter2" not in report.body


def test_a_database_that_cannot_be_reached_shows_no_password_on_the_debug_page():
    """A real failed connection: Django's own filter shows the password in the frames' variables."""
    program = (
        "import os, sys, django; django.setup()\n"
        "from django.db import connection\n"
        "from django.test import RequestFactory\n"
        "from django.views.debug import technical_500_response\n"
        "try:\n"
        "    connection.ensure_connection()\n"
        "except Exception:\n"
        # Under runserver, request.META holds the whole environment.
        "    request = RequestFactory().get('/', **os.environ)\n"
        "    page = technical_500_response(request, *sys.exc_info()).content.decode()\n"
        "    print('OperationalError' in page, 'hunter2' in page)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "mediaproject.settings",
            "ENV_FILE": "",
            "DEBUG": "on",
            # Port 1: nothing listens there, so the connection fails at once.
            "DATABASE_URL": "postgres://tours:hunter2@127.0.0.1:1/tours",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.split() == ["True", "False"], result.stderr


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("postgres://u:p@h/db", "postgres://u:***@h/db"),
        ("redis://:p@h:6379/0", "redis://:***@h:6379/0"),
        ("postgres://u:p%40ss@h/db", "postgres://u:***@h/db"),
        ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
        ("see postgres://u:p@h/db and https://a:b@c/", "see postgres://u:***@h/db and https://a:***@c/"),
        ("host=h password=p user=u", "host=h password=*** user=u"),
        ("host=h password='p q' user=u", "host=h password=*** user=u"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("https://example.ge:8443/path?mail=a@b.ge", "https://example.ge:8443/path?mail=a@b.ge"),
    ],
)
def test_redact_hides_passwords_of_urls_and_connection_strings(text, redacted):
    assert redact(text) == redacted
