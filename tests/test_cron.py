import os
import subprocess
from types import SimpleNamespace

import pytest
from django.conf import settings

from media_app import cron
from media_app.models import CleanupRun, Media
from tests import factories
from tests.conftest import database_url, require_system_user, require_tool

pytestmark = pytest.mark.django_db(transaction=True)

# The system user whose crontab these tests write (`make system-deps` creates it); never root's.
CRON_USER = os.environ.get("CRON_TEST_USER", "mediacron")
SECRET_KEY = "secret-that-lives-only-in-the-env-file"
SCHEDULE = "17 4 * * 1"


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
    assert line.startswith(f"{SCHEDULE} ")
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


def test_remove_takes_the_line_out(project, installed, manage_py):
    assert installed

    removed = manage_py("crontab", "remove", exact_env=project.env)

    assert removed.returncode == 0, removed.stderr
    assert our_lines(project.user) == []


def test_the_job_runs_the_engine_as_cron_and_prints_a_dated_summary(capsys):
    factories.media(factories.tour())

    cron.cleanup_media()

    run = CleanupRun.objects.get()
    assert (run.trigger, run.status) == ("cron", "ok")
    assert "cleanup_media (cron): ok: checked 1 rows" in capsys.readouterr().out


def test_the_job_definition_hashes_as_django_crontab_does(settings):
    from django_crontab.crontab import Crontab

    settings.CRONJOBS = [("5 1 * * *", cron.JOB)]
    job = cron.scheduled_job()

    # django-crontab keeps its hash private; this pins the copy that the health check uses.
    assert cron.job_hash(job) == Crontab()._Crontab__hash_job(job)
    assert cron.job_hash(job) != cron.job_hash(("6 1 * * *", cron.JOB))
