import os
import subprocess
import sys

from django.conf import settings

PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.TIME_ZONE, s.DEBUG, s.DATABASES['default']['ENGINE'], s.MEDIA_ROOT)"
)


def run_settings(**env):
    """Load the settings in a fresh interpreter with exactly the given variables."""
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mediaproject.settings",
        "ENV_FILE": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_secret_key_is_required_when_debug_is_off():
    result = run_settings()

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "make demo" in result.stderr


def test_defaults_are_tbilisi_time_sqlite_and_media_in_the_project():
    result = run_settings(SECRET_KEY="k")

    assert result.returncode == 0, result.stderr
    zone, debug, engine, media_root = result.stdout.split()
    assert zone == "Asia/Tbilisi"
    assert debug == "False"
    assert engine == "django.db.backends.sqlite3"
    assert media_root == str(settings.BASE_DIR / "media")


def test_debug_on_needs_no_key_and_database_url_switches_to_postgresql():
    result = run_settings(DEBUG="on", DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:3] == ["True", "django.db.backends.postgresql"]


def test_an_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("SECRET_KEY=from-file\nTIME_ZONE=UTC\nMEDIA_ROOT=/srv/media\n")

    result = run_settings(ENV_FILE=str(env_file), MEDIA_ROOT="/data/media")

    assert result.returncode == 0, result.stderr
    zone, _, _, media_root = result.stdout.split()
    assert (zone, media_root) == ("UTC", "/data/media")
