"""Sentry, optional: started by the settings with SENTRY_DSN, it receives errors, passwords redacted.

A stand-in for Sentry's server on loopback (``tests/sentry_server.py``) receives what a real
``manage.py`` process sends.
"""

import json

import pytest

from tests import factories
from tests.sentry_server import sentry_server

pytestmark = pytest.mark.django_db(transaction=True)

PRINT_SENTRY_MODULES = (
    "import json, sys; print(json.dumps(sorted(name for name in sys.modules if 'sentry' in name)))"
)


@pytest.fixture
def sentry():
    with sentry_server() as server:
        yield server


def test_without_a_dsn_nothing_of_sentry_is_imported(manage_py):
    done = manage_py(
        "shell", "-c", f"from media_app import cron; cron.cleanup_media(); {PRINT_SENTRY_MODULES}"
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_with_a_dsn_sentry_sdk_starts_with_djangos_integration(manage_py, sentry):
    dsn, envelopes = sentry

    done = manage_py("shell", "-c", PRINT_SENTRY_MODULES, env={"SENTRY_DSN": dsn})

    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert {"sentry_sdk", "sentry_sdk.integrations.django", "mediaproject.sentry"} <= set(loaded)


def test_the_error_of_a_refused_run_reaches_sentry(manage_py, media_root, sentry):
    dsn, envelopes = sentry
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")

    done = manage_py("cleanup_media", env={"SENTRY_DSN": dsn})

    assert done.returncode == 1
    (event,) = envelopes.of_type("event")
    assert event["level"] == "error"
    assert event["logger"] == "media_app.cleanup.engine"
    assert event["logentry"]["formatted"].startswith("Cleanup refused by the safety cap")
    assert "django" in event["sdk"]["integrations"]


def test_an_event_never_carries_a_password(manage_py, sentry):
    dsn, envelopes = sentry
    program = (
        "import logging\n"
        "def connect(url):\n"
        "    raise ConnectionError(f'cannot reach {url}')\n"
        "try:\n"
        "    connect('postgres://tours:hunter2@db.example.ge/tours')\n"
        "except ConnectionError:\n"
        "    logging.getLogger('tours').exception('lost postgres://tours:hunter2@db.example.ge/tours')\n"
    )

    done = manage_py("shell", "-c", program, env={"SENTRY_DSN": dsn})

    assert done.returncode == 0, done.stderr
    (event,) = envelopes.of_type("event")
    assert not [body for body in envelopes.bodies if b"hunter2" in body]
    assert event["logentry"]["formatted"] == "lost postgres://tours:***@db.example.ge/tours"
    (exception,) = event["exception"]["values"]
    assert exception["value"] == "cannot reach postgres://tours:***@db.example.ge/tours"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["vars"]["url"] == "'postgres://tours:***@db.example.ge/tours'"
