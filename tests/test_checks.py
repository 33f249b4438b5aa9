import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import checks
from django.core.management import call_command
from django.utils import timezone

from media_app import cron, schedule
from media_app.checks import (
    check_cleanup_job_installed,
    check_crontab_binary,
    check_last_run_outcome,
    check_last_successful_run,
    check_log_folder,
    check_schedule_converts,
)
from media_app.cleanup.engine import run_cleanup
from media_app.models import CleanupRun
from tests import factories
from tests.conftest import require_system_user, require_tool

CRON_USER = os.environ.get("CRON_TEST_USER", "mediacron")


def ids(messages):
    return [message.id for message in messages]


@pytest.fixture
def fake_crontab(tmp_path, settings):
    """A stand-in crontab binary that lists ``crontab.txt`` (so no real crontab is read here)."""
    listing = tmp_path / "crontab.txt"
    script = tmp_path / "bin" / "crontab"
    script.parent.mkdir()
    script.write_text(
        f'#!/bin/sh\n[ -f "{listing}" ] || {{ echo "no crontab for tester" >&2; exit 1; }}\ncat "{listing}"\n'
    )
    script.chmod(0o755)
    settings.CRONTAB_EXECUTABLE = f"{script} -u tester"
    settings.CRONJOBS = [("5 1 * * *", cron.JOB)]
    return listing


def line_for(job):
    return f"{job[0]} /venv/bin/python /srv/manage.py crontab run {cron.job_hash(job)} >> /log 2>&1 # x\n"


# -- W001: the crontab binary ------------------------------------------------------------------


def test_w001_when_the_crontab_binary_is_missing(settings, tmp_path):
    settings.CRONTAB_EXECUTABLE = f"{tmp_path / 'nowhere' / 'crontab'} -u tester"

    assert ids(check_crontab_binary()) == ["media_app.W001"]


def test_no_w001_when_the_crontab_binary_is_there(fake_crontab):
    assert check_crontab_binary() == []


# -- W002: the job in the crontab --------------------------------------------------------------


def test_w002_when_the_user_has_no_crontab(fake_crontab):
    assert ids(check_cleanup_job_installed()) == ["media_app.W002"]


def test_no_w002_when_the_line_of_the_job_is_there(fake_crontab):
    fake_crontab.write_text("# a comment\n" + line_for(("5 1 * * *", cron.JOB)))

    assert check_cleanup_job_installed() == []


def test_w002_when_the_line_was_added_with_another_schedule(fake_crontab):
    fake_crontab.write_text(line_for(("0 3 * * *", cron.JOB)))

    messages = check_cleanup_job_installed()

    assert ids(messages) == ["media_app.W002"]
    assert "'5 1 * * *'" in messages[0].msg


def test_w002_when_the_line_is_commented_out(fake_crontab):
    fake_crontab.write_text("#" + line_for(("5 1 * * *", cron.JOB)))

    assert ids(check_cleanup_job_installed()) == ["media_app.W002"]


def test_w002_says_when_the_crontab_cannot_be_read(fake_crontab, settings, tmp_path):
    refusing = tmp_path / "bin" / "refusing"
    refusing.write_text('#!/bin/sh\necho "must be privileged to use -u" >&2\nexit 1\n')
    refusing.chmod(0o755)
    settings.CRONTAB_EXECUTABLE = f"{refusing} -u tester"

    messages = check_cleanup_job_installed()

    assert ids(messages) == ["media_app.W002"]
    assert "must be privileged to use -u" in messages[0].msg


def test_no_w002_when_the_sweep_is_not_scheduled_or_crontab_is_missing(fake_crontab, settings, tmp_path):
    settings.CRONJOBS = []
    assert check_cleanup_job_installed() == []

    settings.CRONJOBS = [("5 1 * * *", cron.JOB)]
    settings.CRONTAB_EXECUTABLE = str(tmp_path / "nowhere" / "crontab")
    assert check_cleanup_job_installed() == []  # W001 says why


def test_w002_follows_the_real_crontab_through_add_and_remove(settings, tmp_path, capsys):
    require_tool("crontab")
    user = require_system_user(CRON_USER)
    settings.CRONTAB_EXECUTABLE = f"crontab -u {user}"
    settings.MEDIA_CLEANUP_LOG_FILE = str(tmp_path / "log" / "cleanup_media.log")
    settings.CRONJOBS = [("5 1 * * *", cron.JOB)]
    try:
        call_command("crontab", "add")
        assert check_cleanup_job_installed() == []

        settings.CRONJOBS = [("6 1 * * *", cron.JOB)]  # the schedule changed; nobody ran `add`
        assert ids(check_cleanup_job_installed()) == ["media_app.W002"]

        # The old line's job is gone: `add` names the line instead of stopping on it.
        call_command("crontab", "add")
        assert "no such job in CRONJOBS now" in capsys.readouterr().out
        assert check_cleanup_job_installed() == []

        call_command("crontab", "remove")
        assert ids(check_cleanup_job_installed()) == ["media_app.W002"]
    finally:
        call_command("crontab", "remove", verbosity=0)


def other_season(zone):
    """Return a fixed moment at which ``zone``'s offset differs from today's (winter or summer)."""
    winter, summer = datetime(2027, 1, 15, 12, tzinfo=UTC), datetime(2027, 7, 15, 12, tzinfo=UTC)
    today = datetime.now(UTC).astimezone(zone).utcoffset()
    return winter if winter.astimezone(zone).utcoffset() != today else summer


def test_w002_when_the_line_was_written_before_a_daylight_saving_change(fake_crontab, settings):
    settings.MEDIA_CLEANUP_HOST_TIME_ZONE = "Europe/Berlin"
    settings.CRONJOBS = [(cron.host_schedule().host_schedule, cron.JOB)]  # as the settings make it today
    at = other_season(ZoneInfo("Europe/Berlin"))
    then = schedule.convert("0 3 * * *", "Asia/Tbilisi", "Europe/Berlin", at)
    job = (then.host_schedule, cron.JOB)
    fake_crontab.write_text(
        f"{job[0]} {then.line_prefix} /venv/bin/python /srv/manage.py crontab run {cron.job_hash(job)} "
        f">> /log 2>&1 # {settings.CRONTAB_COMMENT}\n"
    )

    messages = check_cleanup_job_installed()

    assert ids(messages) == ["media_app.W002"]
    written, now = schedule.utc_offset(then.offsets.host), schedule.utc_offset(cron.offsets().host)
    assert f"written for the host at UTC{written} and TIME_ZONE at UTC+04:00" in messages[0].msg
    assert f"they are now at UTC{now} and UTC+04:00 (daylight saving time" in messages[0].msg
    assert "`python manage.py crontab add` again" in messages[0].hint


def test_no_w002_for_an_offset_change_that_leaves_the_line_as_it_was(fake_crontab, settings):
    settings.MEDIA_CLEANUP_SCHEDULE = "*/15 * * * *"
    settings.MEDIA_CLEANUP_HOST_TIME_ZONE = "Europe/Berlin"
    then = schedule.convert(
        "*/15 * * * *", "Asia/Tbilisi", "Europe/Berlin", other_season(ZoneInfo("Europe/Berlin"))
    )
    settings.CRONJOBS = [(cron.host_schedule().host_schedule, cron.JOB)]
    job = (then.host_schedule, cron.JOB)
    fake_crontab.write_text(
        f"{job[0]} {then.line_prefix} python manage.py crontab run {cron.job_hash(job)} # x\n"
    )

    assert check_cleanup_job_installed() == []


# -- E002: the schedule converts ---------------------------------------------------------------


def test_e002_when_the_schedule_cannot_be_converted_for_the_host(settings):
    settings.MEDIA_CLEANUP_SCHEDULE = "0 2 1 * *"
    settings.MEDIA_CLEANUP_HOST_TIME_ZONE = "Etc/UTC"

    messages = check_schedule_converts()

    assert ids(messages) == ["media_app.E002"]
    assert "MEDIA_CLEANUP_SCHEDULE='0 2 1 * *' in TIME_ZONE (UTC+04:00) cannot be written" in messages[0].msg


def test_no_e002_when_it_converts(settings):
    settings.MEDIA_CLEANUP_SCHEDULE = "0 3 * * *"
    settings.MEDIA_CLEANUP_HOST_TIME_ZONE = "Etc/UTC"

    assert check_schedule_converts() == []


# -- W003: the last successful run -------------------------------------------------------------


def finished_run(age=timedelta(hours=1), **fields):
    finished = timezone.now() - age
    return CleanupRun.objects.create(
        **{"status": "ok", "started_at": finished - timedelta(seconds=5), "finished_at": finished, **fields}
    )


@pytest.mark.django_db
def test_w003_when_no_real_run_ever_succeeded():
    assert ids(check_last_successful_run()) == ["media_app.W003"]


@pytest.mark.django_db(transaction=True)
def test_no_w003_right_after_a_successful_real_run():
    factories.media(factories.tour())

    assert run_cleanup(trigger="cron").status == "ok"

    assert check_last_successful_run() == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["ok", "partial"])
def test_no_w003_when_the_last_success_is_recent(settings, status):
    settings.MEDIA_CLEANUP_ALERT_AFTER = "6h"
    finished_run(age=timedelta(hours=5), status=status)

    assert check_last_successful_run() == []


@pytest.mark.django_db
def test_w003_when_the_last_success_is_older_than_the_alert_setting(settings):
    settings.MEDIA_CLEANUP_ALERT_AFTER = "6h"
    finished_run(age=timedelta(hours=7))

    messages = check_last_successful_run()

    assert ids(messages) == ["media_app.W003"]
    assert "more than 6 hours ago" in messages[0].msg


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"dry_run": True},
        {"status": "errors"},
        {"status": "refused"},
        {"status": "locked"},
        {"status": "running", "finished_at": None},
        {"options": {"media_ids": 3}},  # the admin's action on a few rows is not a sweep
    ],
    ids=["dry run", "errors", "refused", "locked", "running", "selection"],
)
def test_w003_when_recent_runs_are_not_successful_real_sweeps(fields):
    finished_run(age=timedelta(days=3))
    finished_run(**fields)

    assert ids(check_last_successful_run()) == ["media_app.W003"]


@pytest.mark.django_db(transaction=True)
def test_w003_when_the_last_successful_run_cleaned_up_a_selection_only():
    finished_run(age=timedelta(days=3))
    orphan = factories.media(factories.tour())

    assert run_cleanup(media_ids=[orphan.pk], trigger="admin").status == "ok"

    assert ids(check_last_successful_run()) == ["media_app.W003"]


@pytest.mark.django_db
def test_e001_for_an_alert_setting_that_does_not_parse(settings):
    settings.MEDIA_CLEANUP_ALERT_AFTER = "two days"

    messages = check_last_successful_run()

    assert ids(messages) == ["media_app.E001"]
    assert "MEDIA_CLEANUP_ALERT_AFTER" in messages[0].msg


# -- W005: the last real run's outcome ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["failed", "refused", "interrupted"])
def test_w005_when_the_last_real_run_ended_failed_refused_or_interrupted(status):
    finished_run(age=timedelta(days=1))
    last = finished_run(status=status, message="the run could not go on: LockLost: the lock was lost")

    messages = check_last_run_outcome()

    assert ids(messages) == ["media_app.W005"]
    started = timezone.localtime(last.started_at)
    assert messages[0].msg == (
        f"The last cleanup run, started {started:%Y-%m-%d %H:%M} +04, ended {status}: "
        "the run could not go on: LockLost: the lock was lost"
    )
    assert f"/admin/media_app/cleanuprun/{last.pk}/report/" in messages[0].hint


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["ok", "partial", "errors"])
def test_no_w005_when_the_last_real_run_ended_otherwise(status):
    finished_run(age=timedelta(days=1), status="failed")
    finished_run(status=status)

    assert check_last_run_outcome() == []


@pytest.mark.django_db
def test_no_w005_before_the_first_run():
    assert check_last_run_outcome() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"dry_run": True},
        {"options": {"media_ids": 3}},  # the admin's action on a few rows says nothing of the sweep
        {"status": "running", "finished_at": None},
        {"status": "locked"},
    ],
    ids=["dry run", "selection", "running", "locked"],
)
def test_w005_looks_past_runs_that_are_not_finished_real_sweeps(fields):
    finished_run(age=timedelta(hours=2), status="refused", message="refused by the safety cap")
    finished_run(**{"status": "ok", **fields})

    messages = check_last_run_outcome()

    assert ids(messages) == ["media_app.W005"]
    assert "ended refused: refused by the safety cap" in messages[0].msg


@pytest.mark.django_db(transaction=True)
def test_w005_after_a_real_run_refused_by_the_cap_until_the_next_one_succeeds(media_root):
    for number in range(20):
        factories.stray_file(media_root, f"uploads/tours/{number}.jpg")

    assert run_cleanup().status == "refused"
    messages = check_last_run_outcome()
    assert ids(messages) == ["media_app.W005"]
    assert "ended refused: refused by the safety cap: the run would delete 20 of 20 files" in messages[0].msg

    assert run_cleanup(force=True).status == "ok"
    assert check_last_run_outcome() == []


@pytest.mark.django_db
def test_w005_runs_with_deploy_under_the_media_cleanup_tag_only():
    finished_run(status="failed")

    assert "media_app.W005" in ids(checks.run_checks(include_deployment_checks=True, tags=["media_cleanup"]))
    assert "media_app.W005" not in ids(
        checks.run_checks(include_deployment_checks=True, tags=["media_cleanup_cron"])
    )
    assert "media_app.W005" not in ids(checks.run_checks())


# -- W004: the log's folder --------------------------------------------------------------------


def test_w004_when_the_log_folder_is_missing(settings, tmp_path):
    settings.MEDIA_CLEANUP_LOG_FILE = str(tmp_path / "missing" / "cleanup_media.log")

    assert ids(check_log_folder()) == ["media_app.W004"]


def test_no_w004_when_the_log_folder_exists(settings, tmp_path):
    settings.MEDIA_CLEANUP_LOG_FILE = str(tmp_path / "cleanup_media.log")

    assert check_log_folder() == []


# -- registration ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_checks_run_with_deploy_and_only_then(fake_crontab, settings, tmp_path):
    settings.MEDIA_CLEANUP_LOG_FILE = str(tmp_path / "missing" / "cleanup_media.log")

    deploy = ids(checks.run_checks(include_deployment_checks=True, tags=["media_cleanup"]))
    cron_only = ids(checks.run_checks(include_deployment_checks=True, tags=["media_cleanup_cron"]))
    everyday = ids(checks.run_checks())

    assert sorted(deploy) == ["media_app.W002", "media_app.W003", "media_app.W004"]
    assert sorted(cron_only) == ["media_app.W002", "media_app.W004"]
    assert not [name for name in everyday if name.startswith("media_app.")]


@pytest.mark.django_db
def test_e002_runs_with_deploy_only_so_that_other_commands_still_work(fake_crontab, settings):
    settings.MEDIA_CLEANUP_SCHEDULE = "0 1,22 * * 1"
    settings.MEDIA_CLEANUP_HOST_TIME_ZONE = "Etc/UTC"

    assert "media_app.E002" in ids(
        checks.run_checks(include_deployment_checks=True, tags=["media_cleanup_cron"])
    )
    assert not [name for name in ids(checks.run_checks()) if name.startswith("media_app.")]


@pytest.mark.django_db(transaction=True)
def test_check_deploy_fails_a_probe_when_crontab_is_missing(manage_py, tmp_path):
    checked = manage_py(
        "check",
        "--deploy",
        "--tag=media_cleanup_cron",
        "--fail-level=WARNING",
        env={"CRONTAB_EXECUTABLE": str(tmp_path / "nowhere" / "crontab")},
    )

    assert checked.returncode == 1
    assert "media_app.W001" in checked.stderr
    assert "whatever `manage.py crontab add` printed" in checked.stderr
