import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.TIME_ZONE, s.DEBUG, s.DATABASES['default']['ENGINE'], s.MEDIA_ROOT)"
)


PRINT_STORAGE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "storage = s.STORAGES['default']; options = dict(storage.get('OPTIONS', {})); "
    "config = options.pop('client_config', None); "
    "print(json.dumps({'backend': storage['BACKEND'], 'options': options, "
    "'retries': config and config.retries, 's3': config and config.s3}))"
)
S3_ENVIRONMENT = {
    "SECRET_KEY": "k",
    "MEDIA_STORAGE": "s3",
    "AWS_STORAGE_BUCKET_NAME": "tour-media",
    "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "AWS_ACCESS_KEY_ID": "key-id",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_S3_REGION_NAME": "eu-central-1",
    "AWS_S3_ADDRESSING_STYLE": "path",
}


def run_settings(program=PRINT_SETTINGS, **env):
    """Load the settings in a fresh interpreter with exactly the given variables; run ``program``."""
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mediaproject.settings",
        "ENV_FILE": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", program],
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


PRINT_SCHEDULE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.CRONJOBS, s.CRONTAB_COMMAND_SUFFIX, str(s.MEDIA_CLEANUP_LOG_FILE), "
    "s.MEDIA_CLEANUP_ALERT_AFTER]))"
)


def test_the_schedule_defaults_to_three_at_night_and_logs_under_var(tmp_path):
    result = run_settings(PRINT_SCHEDULE, SECRET_KEY="k", MEDIA_CLEANUP_HOST_TIME_ZONE="Asia/Tbilisi")

    assert result.returncode == 0, result.stderr
    jobs, suffix, log_file, alert_after = json.loads(result.stdout)
    assert jobs == [["0 3 * * *", "media_app.cron.cleanup_media"]]
    assert log_file == str(settings.BASE_DIR / "var" / "log" / "cleanup_media.log")
    assert suffix == f">> {log_file} 2>&1"
    assert alert_after == "2d"


def test_the_job_definition_comes_from_the_env_file_alone_and_is_the_same_every_time(tmp_path):
    env_file = tmp_path / "project.env"
    log_file = tmp_path / "my logs" / "sweep.log"
    env_file.write_text(
        f"SECRET_KEY=k\nMEDIA_CLEANUP_SCHEDULE=30 2 * * *\nMEDIA_CLEANUP_LOG_FILE={log_file}\n"
        "MEDIA_CLEANUP_HOST_TIME_ZONE=Asia/Tbilisi\n"
    )

    first, second = (run_settings(PRINT_SCHEDULE, ENV_FILE=str(env_file)) for _ in range(2))

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    jobs, suffix, _, _ = json.loads(first.stdout)
    assert jobs == [["30 2 * * *", "media_app.cron.cleanup_media"]]
    assert suffix == f">> '{log_file}' 2>&1"


def test_a_schedule_that_is_not_five_cron_fields_is_refused():
    result = run_settings(PRINT_SCHEDULE, SECRET_KEY="k", MEDIA_CLEANUP_SCHEDULE="@daily")

    assert result.returncode != 0
    assert "MEDIA_CLEANUP_SCHEDULE='@daily' is not five cron fields" in result.stderr


def test_media_storage_defaults_to_local_files():
    result = run_settings(PRINT_STORAGE, SECRET_KEY="k")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backend"] == "django.core.files.storage.FileSystemStorage"


def test_media_storage_s3_configures_private_signed_objects_and_botocore_retries():
    result = run_settings(PRINT_STORAGE, **S3_ENVIRONMENT)

    assert result.returncode == 0, result.stderr
    storage = json.loads(result.stdout)
    assert storage["backend"] == "storages.backends.s3.S3Storage"
    assert storage["options"] == {
        "bucket_name": "tour-media",
        "endpoint_url": "http://127.0.0.1:9000",
        "access_key": "key-id",
        "secret_key": "secret",
        "region_name": "eu-central-1",
        "location": "",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }
    assert storage["retries"] == {"mode": "standard", "total_max_attempts": 10}
    assert storage["s3"] == {"addressing_style": "path"}


def test_retry_mode_attempts_and_key_prefix_are_configurable():
    result = run_settings(
        PRINT_STORAGE, **S3_ENVIRONMENT, AWS_RETRY_MODE="adaptive", AWS_MAX_ATTEMPTS="4", AWS_LOCATION="media"
    )

    assert result.returncode == 0, result.stderr
    storage = json.loads(result.stdout)
    assert storage["retries"] == {"mode": "adaptive", "total_max_attempts": 4}
    assert storage["options"]["location"] == "media"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"MEDIA_STORAGE": "gcs"}, "MEDIA_STORAGE is 'gcs'"),
        ({"AWS_STORAGE_BUCKET_NAME": ""}, "AWS_STORAGE_BUCKET_NAME"),
        ({"AWS_RETRY_MODE": "legacy"}, "AWS_RETRY_MODE"),
        ({"AWS_MAX_ATTEMPTS": "0"}, "AWS_MAX_ATTEMPTS"),
    ],
)
def test_a_bad_storage_setting_is_refused_by_name(variables, named):
    result = run_settings(PRINT_STORAGE, **{**S3_ENVIRONMENT, **variables})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr
