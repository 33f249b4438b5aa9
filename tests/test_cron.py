import gc
import os
import subprocess
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from media_app import cron
from media_app.models import CleanupRun, Media
from tests import factories
from tests.conftest import database_url, require_system_user, require_tool

pytestmark = pytest.mark.django_db(transaction=True)

# The system user whose crontab these tests write (`make system-deps` creates it); never root's.
CRON_USER = os.environ.get("CRON_TEST_USER", "mediacron")
SECRET_KEY = "secret-that-lives-only-in-the-env-file"
# Meant in TIME_ZONE (Asia/Tbilisi, UTC+04:00); cron on this host (UTC, by the setting) reads it
# four hours earlier, the same Monday.
SCHEDULE, HOST_SCHEDULE = "17 4 * * 1", "17 0 * * 1"


def our_lines(user):
    """Return this project's lines in the user's crontab."""
    listing = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True)
    comment = f"# cleanup_media of {settings.BASE_DIR}"
    return [line for line in listing.stdout.splitlines() if line.endswith(comment)]


@pytest.fixture
def project(tmp_path, media_root):
    """An env file standing for the project's .env, and the bare environment cron gives a job."""
    user = require_system_user(CRON_USER)
    require_tool("crontab")
    log_file = tmp_path / "log" / "cleanup_media.log"
    env_file = tmp_path / "project.env"
    env_file.write_text(
        f"SECRET_KEY={SECRET_KEY}\n"
        f"DATABASE_URL={database_url()}\n"
        f"MEDIA_ROOT={media_root}\n"
        f"MEDIA_CLEANUP_QUARANTINE_ROOT={settings.MEDIA_CLEANUP_QUARANTINE_ROOT}\n"
        f"MEDIA_CLEANUP_SCHEDULE={SCHEDULE}\n"
        "MEDIA_CLEANUP_HOST_TIME_ZONE=Etc/UTC\n"
        f"MEDIA_CLEANUP_LOG_FILE={log_file}\n"
        f"CRONTAB_EXECUTABLE=crontab -u {user}\n"
    )
    # No DATABASE_URL, no SECRET_KEY: only what cron sets, and ENV_FILE in place of <project>/.env.
    environment = {
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/sh",
        "HOME": str(tmp_path),
        "LOGNAME": user,
        "ENV_FILE": str(env_file),
    }
    return SimpleNamespace(user=user, env=environment, log_file=log_file, home=tmp_path)


@pytest.fixture
def installed(project, manage_py):
    """Add the job with ``manage.py crontab add``; always take it out again."""
    assert not project.log_file.parent.exists()
    try:
        added = manage_py("crontab", "add", exact_env=project.env)
        assert added.returncode == 0, added.stderr
        yield our_lines(project.user)
    finally:
        manage_py("crontab", "remove", "--verbosity=0", exact_env=project.env)


def test_add_writes_the_configured_schedule_to_the_users_crontab_without_secrets(project, installed):
    assert len(installed) == 1
    line = installed[0]
    assert line.startswith(f"{HOST_SCHEDULE} MEDIA_CLEANUP_WRITTEN_FOR=TIME_ZONE+04:00,host+00:00 ")
    assert f" {settings.BASE_DIR / 'manage.py'} crontab run " in line
    assert line.split(" # ")[0].endswith(f">> {project.log_file} 2>&1")
    assert SECRET_KEY not in line and database_url() not in line
    assert project.log_file.parent.is_dir()  # made when `crontab add` loaded the settings


def test_the_crontab_line_runs_the_sweep_and_appends_to_the_log(project, installed, media_root):
    owner = factories.tour()
    kept = factories.media(factories.tour())
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")
    command = installed[0].split(None, 5)[5].rsplit(" # ", 1)[0]

    ran = subprocess.run(["/bin/sh", "-c", command], cwd=project.home, env=project.env, timeout=120)

    assert ran.returncode == 0
    log = project.log_file.read_text()
    assert "cleanup_media (cron): ok" in log, log
    run = CleanupRun.objects.get()
    assert (run.trigger, run.status, run.dry_run, run.deleted_records) == ("cron", "ok", False, 1)
    assert list(Media.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Media.objects.filter(pk=orphan.pk).exists() and not stray.exists()


def test_add_and_show_say_how_the_schedule_reads_on_this_host(project, installed, manage_py):
    shown = manage_py("crontab", "show", exact_env=project.env)

    assert shown.returncode == 0, shown.stderr
    first, header, job = shown.stdout.splitlines()
    assert (
        first
        == f"{SCHEDULE} in Asia/Tbilisi (UTC+04:00) is {HOST_SCHEDULE} on this host (Etc/UTC, UTC+00:00)"
    )
    assert job.endswith(f") -> ('{HOST_SCHEDULE}', 'media_app.cron.cleanup_media')")


def test_a_line_written_at_other_offsets_still_runs_and_add_replaces_it(project, manage_py):
    """The host's offset changed since `add` (daylight saving time, here a zone setting)."""
    earlier = {**project.env, "MEDIA_CLEANUP_HOST_TIME_ZONE": "Etc/GMT-1"}  # UTC+01:00
    probe = ("check", "--deploy", "--tag=media_cleanup_cron", "--fail-level=WARNING")
    try:
        assert manage_py("crontab", "add", exact_env=earlier).returncode == 0
        (line,) = our_lines(project.user)
        assert line.startswith("17 1 * * 1 MEDIA_CLEANUP_WRITTEN_FOR=TIME_ZONE+04:00,host+01:00 ")

        checked = manage_py(*probe, exact_env=project.env)
        assert checked.returncode == 1
        assert "media_app.W002" in checked.stderr and "written for the host at UTC+01:00" in checked.stderr

        command = line.split(None, 5)[5].rsplit(" # ", 1)[0]
        ran = subprocess.run(["/bin/sh", "-c", command], cwd=project.home, env=project.env, timeout=120)
        assert ran.returncode == 0
        assert "cleanup_media (cron): ok" in project.log_file.read_text()

        added = manage_py("crontab", "add", exact_env=project.env)
        assert added.returncode == 0, added.stderr
        assert "-> no such job in CRONJOBS now" in added.stdout
        assert [line.split(" MEDIA_CLEANUP")[0] for line in our_lines(project.user)] == [HOST_SCHEDULE]
        assert manage_py(*probe, exact_env=project.env).returncode == 0
    finally:
        manage_py("crontab", "remove", "--verbosity=0", exact_env=project.env)


def test_add_refuses_a_schedule_that_cannot_be_converted_and_other_commands_still_work(project, manage_py):
    # On the host, 02:00 in Tbilisi on the 1st is 22:00 on the last day of the month before.
    env = {**project.env, "MEDIA_CLEANUP_SCHEDULE": "0 2 1 * *"}
    try:
        added = manage_py("crontab", "add", exact_env=env)

        assert added.returncode == 2
        assert added.stderr.startswith("CommandError: MEDIA_CLEANUP_SCHEDULE='0 2 1 * *' in TIME_ZONE")
        assert len(added.stderr.splitlines()) == 1, added.stderr
        assert our_lines(project.user) == [] and not project.log_file.parent.exists()
        assert manage_py("check", exact_env=env).returncode == 0
        assert manage_py("migrate", "--check", exact_env=env).returncode == 0
        checked = manage_py("check", "--deploy", "--tag=media_cleanup_cron", exact_env=env)
        assert checked.returncode == 1 and "media_app.E002" in checked.stderr
    finally:
        manage_py("crontab", "remove", "--verbosity=0", exact_env=env)


def test_a_run_whose_hash_names_no_job_says_so_in_one_line(manage_py):
    ran = manage_py("crontab", "run", "0123456789abcdef0123456789abcdef")

    assert ran.returncode == 1
    assert ran.stderr.startswith(
        "CommandError: No job with hash 0123456789abcdef0123456789abcdef in CRONJOBS"
    )
    assert len(ran.stderr.splitlines()) == 1, ran.stderr
    assert not CleanupRun.objects.exists()


def test_add_refuses_when_the_log_folder_cannot_be_made(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.MEDIA_CLEANUP_LOG_FILE = str(blocker / "log" / "cleanup_media.log")
    settings.CRONTAB_EXECUTABLE = str(tmp_path / "nowhere" / "crontab")  # never reached

    with pytest.raises(
        CommandError, match="The folder of MEDIA_CLEANUP_LOG_FILE, .* cannot be created"
    ) as refused:
        call_command("crontab", "add")

    assert refused.value.returncode == 2


def test_remove_takes_the_line_out(project, installed, manage_py):
    assert installed

    removed = manage_py("crontab", "remove", exact_env=project.env)

    assert removed.returncode == 0, removed.stderr
    assert our_lines(project.user) == []


def test_the_job_runs_the_engine_as_cron_and_prints_a_dated_summary(capsys):
    factories.media(factories.tour())
    gc.unfreeze()

    try:
        cron.cleanup_media()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()

    assert frozen > 0, "the job's process leaves what it loaded out of the collector's passes"

    run = CleanupRun.objects.get()
    assert (run.trigger, run.status) == ("cron", "ok")
    assert "cleanup_media (cron): ok: checked 1 row" in capsys.readouterr().out


def test_the_job_definition_hashes_as_django_crontab_does(settings):
    from django_crontab.crontab import Crontab

    settings.CRONJOBS = [("5 1 * * *", cron.JOB)]
    job = cron.scheduled_job()

    # django-crontab keeps its hash private; this pins the copy that the health check uses.
    assert cron.job_hash(job) == Crontab()._Crontab__hash_job(job)
    assert cron.job_hash(job) != cron.job_hash(("6 1 * * *", cron.JOB))
