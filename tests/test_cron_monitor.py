"""Sentry's cron monitor hears of each scheduled run: in progress, then ok or error by its status.

The scheduled job runs in a real ``manage.py`` process; a stand-in for Sentry's server on
loopback (``tests/sentry_server.py``) receives its check-ins.
"""

import pytest

from media_app.cron_monitor import MONITOR_SLUG
from tests import factories
from tests.sentry_server import sentry_server

pytestmark = pytest.mark.django_db(transaction=True)

RUN_THE_JOB = "from media_app import cron; cron.cleanup_media()"


@pytest.fixture
def sentry():
    with sentry_server() as server:
        yield server


def statuses(check_ins):
    return [check_in["status"] for check_in in check_ins]


def test_a_run_that_succeeds_checks_in_then_reports_ok(manage_py, sentry):
    dsn, envelopes = sentry

    done = manage_py(
        "shell", "-c", RUN_THE_JOB, env={"SENTRY_DSN": dsn, "MEDIA_CLEANUP_SCHEDULE": "30 2 * * *"}
    )

    assert done.returncode == 0, done.stderr
    started, ended = envelopes.of_type("check_in")
    assert statuses([started, ended]) == ["in_progress", "ok"]
    assert started["monitor_slug"] == ended["monitor_slug"] == MONITOR_SLUG
    assert started["check_in_id"] == ended["check_in_id"]
    assert started["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "30 2 * * *"},
        "timezone": "Asia/Tbilisi",
    }
    assert ended["duration"] >= 0


def test_a_run_refused_by_the_cap_reports_an_error(manage_py, media_root, sentry):
    dsn, envelopes = sentry
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")

    done = manage_py("shell", "-c", RUN_THE_JOB, env={"SENTRY_DSN": dsn})

    assert done.returncode == 0, done.stderr
    assert "cleanup_media (cron): refused" in done.stdout
    assert statuses(envelopes.of_type("check_in")) == ["in_progress", "error"]


def test_a_run_that_raises_reports_an_error(manage_py, sentry):
    dsn, envelopes = sentry
    # Inside a transaction run_cleanup() refuses to start: it raises.
    program = f"from django.db import transaction\nwith transaction.atomic():\n    {RUN_THE_JOB}\n"

    done = manage_py("shell", "-c", program, env={"SENTRY_DSN": dsn})

    assert done.returncode == 1 and "TransactionManagementError" in done.stderr
    assert statuses(envelopes.of_type("check_in")) == ["in_progress", "error"]
