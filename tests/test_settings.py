import json
import os
import re
import subprocess
import sys
from pathlib import Path

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


def manage(*args, **env):
    """Run ``python manage.py ARGS`` with exactly the given variables (and PATH, and no .env)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "ENV_FILE": "", **env},
        capture_output=True,
        text=True,
    )


def test_secret_key_is_required_when_debug_is_off():
    result = manage("check")

    assert result.returncode == 2
    assert result.stderr.startswith("SECRET_KEY is not set") and result.stderr.count("\n") == 1
    assert "make demo" in result.stderr


def test_defaults_are_tbilisi_time_sqlite_and_media_in_the_project():
    result = run_settings(SECRET_KEY="k")

    assert result.returncode == 0, result.stderr
    zone, debug, engine, media_root = result.stdout.split()
    assert zone == "Asia/Tbilisi"
    assert debug == "False"
    assert engine == "django.db.backends.sqlite3"
    assert media_root == str(settings.BASE_DIR / "media" / "sqlite-db")


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
    assert not log_file.parent.exists()  # loading the settings creates nothing


def test_a_schedule_that_is_not_five_cron_fields_is_refused():
    result = manage("check", SECRET_KEY="k", MEDIA_CLEANUP_SCHEDULE="@daily")

    assert result.returncode == 2
    assert result.stderr.startswith("MEDIA_CLEANUP_SCHEDULE='@daily' is not five cron fields")


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


@pytest.mark.parametrize(("concurrency", "connections"), [(None, 16), ("4", 10), ("64", 64)])
def test_the_s3_clients_pool_holds_the_sweeps_connections_and_never_fewer_than_botocores(
    concurrency, connections
):
    program = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.MEDIA_CLEANUP_S3_LIST_CONCURRENCY, "
        "s.STORAGES['default']['OPTIONS']['client_config'].max_pool_connections)"
    )
    variables = {} if concurrency is None else {"MEDIA_CLEANUP_S3_LIST_CONCURRENCY": concurrency}

    result = run_settings(program, **S3_ENVIRONMENT, **variables)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [concurrency or "16", str(connections)]


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"MEDIA_STORAGE": "gcs"}, "MEDIA_STORAGE='gcs': expected one of filesystem, s3"),
        ({"AWS_STORAGE_BUCKET_NAME": ""}, "MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME"),
        ({"AWS_RETRY_MODE": "legacy"}, "AWS_RETRY_MODE='legacy': expected one of standard, adaptive"),
        ({"AWS_MAX_ATTEMPTS": "0"}, "AWS_MAX_ATTEMPTS='0': expected a whole number, 1 or more"),
        ({"AWS_S3_ADDRESSING_STYLE": "dns"}, "AWS_S3_ADDRESSING_STYLE='dns': expected one of auto, virtual"),
        ({"AWS_S3_ENDPOINT_URL": "minio:9000"}, "AWS_S3_ENDPOINT_URL='minio:9000': expected an http://"),
        ({"AWS_LOCATION": "/media"}, "AWS_LOCATION='/media': expected a key prefix without a leading '/'"),
    ],
)
def test_a_bad_storage_setting_is_refused_by_name(variables, named):
    result = manage("check", **{**S3_ENVIRONMENT, **variables})

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(named) and result.stderr.count("\n") == 1


# -- every setting is checked as it loads: one line, exit status 2 ----------------------------

BAD_SETTINGS = [
    ("DATABASE_URL", "garbage"),
    ("DATABASE_URL", "mysql://tours@127.0.0.1/tours"),
    ("DATABASE_URL", "postgres://tours@127.0.0.1:5432"),
    ("DATABASE_URL", "postgres://tours@127.0.0.1:99999/tours"),
    ("DATABASE_URL", "sqlite:///db.sqlite3"),
    ("MEDIA_STORAGE", "foo"),
    ("TIME_ZONE", "Europe/Tbilisi"),
    ("MEDIA_CLEANUP_MAX_DELETE_RATIO", "abc"),
    ("MEDIA_CLEANUP_MAX_DELETE_RATIO", "2"),
    ("MEDIA_CLEANUP_MAX_DELETE_RATIO", "-1"),
    ("MEDIA_CLEANUP_MAX_DELETE_RATIO", "nan"),
    ("MEDIA_CLEANUP_CAP_MIN_ITEMS", "x"),
    ("MEDIA_CLEANUP_CAP_MIN_ITEMS", "1.5"),
    ("MEDIA_CLEANUP_HISTORY_DAYS", "-1"),
    ("MEDIA_CLEANUP_QUARANTINE_DAYS", "-3"),
    ("MEDIA_UPLOAD_MAX_BYTES", "0"),
    ("MEDIA_CLEANUP_S3_LIST_CONCURRENCY", "0"),
    ("MEDIA_CLEANUP_S3_LIST_CONCURRENCY", "sixteen"),
    ("MEDIA_CLEANUP_S3_LIST_CONCURRENCY", "065"),
    ("DEBUG", "maybe"),
    ("SECURE_SSL_REDIRECT", "enabled"),
    ("SECURE_HSTS_SECONDS", "-1"),
    ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
    ("MEDIA_CLEANUP_MIN_AGE", "999999999d"),
    ("MEDIA_CLEANUP_MIN_AGE", "9" * 5000),
    ("MEDIA_CLEANUP_MIN_AGE", "a day"),
    ("MEDIA_CLEANUP_ALERT_AFTER", "0"),
    ("MEDIA_CLEANUP_ALERT_AFTER", "3651d"),
    ("MEDIA_CLEANUP_QUARANTINE_PREFIX", "/"),
    ("MEDIA_CLEANUP_QUARANTINE_PREFIX", "uploads/quarantine"),
    ("MEDIA_CLEANUP_QUARANTINE_ROOT", "var/quarantine"),
    ("MEDIA_CLEANUP_LOG_FILE", "cleanup.log"),
    ("MEDIA_UPLOAD_ALLOWED_TYPES", "image/jpeg,image/svg+xml"),
    ("MEDIA_ROOT", "media"),
    ("STATIC_ROOT", "static"),
    ("MEDIA_URL", "/media"),
    ("LOG_LEVEL", "LOUD"),
    ("ALLOWED_HOSTS", "https://media.example.ge"),
    ("CSRF_TRUSTED_ORIGINS", "media.example.ge"),
    ("CRONTAB_EXECUTABLE", "'crontab -u"),
    ("ENV_FILE", "/nonexistent/tours.env"),
]


def assert_refused_in_one_line(result, name, value):
    """Assert that a process stopped with status 2 and one line on stderr naming the setting and value."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith(f"{name}={value[:80]!r}"), result.stderr
    assert "Traceback" not in result.stderr and ": expected " in result.stderr


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS, ids=[f"{n}={v[:20]}" for n, v in BAD_SETTINGS])
def test_a_bad_setting_stops_check_in_one_line_naming_it(name, value):
    result = manage("check", SECRET_KEY="k", **{name: value})

    assert_refused_in_one_line(result, name, value)
    assert result.stdout == ""


@pytest.mark.parametrize(
    "program",
    [
        ["manage.py", "cleanup_media", "--dry-run"],
        ["manage.py", "migrate", "--no-input"],
        ["manage.py", "runserver", "127.0.0.1:0"],
        ["manage.py", "crontab", "add"],
        ["manage.py", "restore_media", "--help"],
        ["-c", "import mediaproject.wsgi"],
        ["-c", "import mediaproject.asgi"],
    ],
    ids=lambda program: " ".join(program[1:]),
)
@pytest.mark.parametrize(
    ("name", "value"),
    [("MEDIA_CLEANUP_MAX_DELETE_RATIO", "abc"), ("TIME_ZONE", "Europe/Tbilisi")],
)
def test_every_command_and_the_web_server_stop_the_same_way(program, name, value, tmp_path):
    crontab = tmp_path / "crontab"  # never reached: it would record that it ran
    result = subprocess.run(
        [sys.executable, *program],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "ENV_FILE": "",
            "SECRET_KEY": "k",
            "CRONTAB_EXECUTABLE": f"touch {crontab}",
            name: value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert_refused_in_one_line(result, name, value)
    assert not crontab.exists()


def test_time_zone_names_the_zone_meant():
    result = manage("check", SECRET_KEY="k", TIME_ZONE="Europe/Tbilisi")

    assert "did you mean Asia/Tbilisi?" in result.stderr


def test_the_message_says_what_is_accepted():
    result = manage("check", SECRET_KEY="k", MEDIA_CLEANUP_MAX_DELETE_RATIO="abc")

    assert result.stderr == (
        "MEDIA_CLEANUP_MAX_DELETE_RATIO='abc': expected a number from 0 to 1, such as 0.5\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgres://tours:hunter2@db.example.ge:5432",
        "mysql://tours:hunter2@db.example.ge/tours",
        "postgres://tours:hunter2@db.example.ge:port/tours",
        "garbage://tours:hunter2@db.example.ge/tours",
    ],
)
def test_a_refused_database_url_never_shows_its_password(url):
    result = manage("check", SECRET_KEY="k", DATABASE_URL=url)

    assert result.returncode == 2
    assert "hunter2" not in result.stderr
    assert "tours:***@db.example.ge" in result.stderr


def test_an_env_file_with_a_line_that_is_not_name_value_is_refused_without_showing_it(tmp_path):
    env_file = tmp_path / "tours.env"
    env_file.write_text("# settings\n\nDEBUG=on\nSECRET_KEY = hunter2\n")

    result = manage("check", ENV_FILE=str(env_file))

    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"ENV_FILE={str(env_file)!r}") and "line 4" in result.stderr
    assert "hunter2" not in result.stderr


PRINT_VALUES = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({name: getattr(s, name) for name in %r}, default=str))"
)


def settings_values(*names, **env):
    """Load the settings with exactly ``env``; return the named settings' values."""
    result = run_settings(PRINT_VALUES % (names,), **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("on", True), ("ON", True), ("true", True), ("Yes", True), ("1", True)]
    + [("off", False), ("False", False), ("no", False), ("0", False), (" off ", False)],
)
def test_booleans_take_the_usual_spellings(word, expected):
    values = settings_values(
        "DEBUG", "SESSION_COOKIE_SECURE", SECRET_KEY="k", DEBUG=word, SESSION_COOKIE_SECURE=word
    )

    assert values == {"DEBUG": expected, "SESSION_COOKIE_SECURE": expected}


def test_good_values_load_as_written():
    values = settings_values(
        "TIME_ZONE",
        "MEDIA_CLEANUP_MAX_DELETE_RATIO",
        "MEDIA_CLEANUP_CAP_MIN_ITEMS",
        "MEDIA_CLEANUP_MIN_AGE",
        "MEDIA_CLEANUP_ALERT_AFTER",
        "MEDIA_UPLOAD_ALLOWED_TYPES",
        "LOG_LEVEL",
        "MEDIA_STORAGE",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_PROXY_SSL_HEADER",
        SECRET_KEY="k",
        TIME_ZONE="UTC",
        MEDIA_CLEANUP_MAX_DELETE_RATIO="1",
        MEDIA_CLEANUP_CAP_MIN_ITEMS="0",
        MEDIA_CLEANUP_MIN_AGE="0",
        MEDIA_CLEANUP_ALERT_AFTER="3650d",
        MEDIA_UPLOAD_ALLOWED_TYPES="image/png, application/pdf",
        LOG_LEVEL="info",
        MEDIA_STORAGE="Filesystem",
        CSRF_TRUSTED_ORIGINS="https://media.example.ge,https://*.example.ge",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )

    assert values == {
        "TIME_ZONE": "UTC",
        "MEDIA_CLEANUP_MAX_DELETE_RATIO": 1.0,
        "MEDIA_CLEANUP_CAP_MIN_ITEMS": 0,
        "MEDIA_CLEANUP_MIN_AGE": "0",
        "MEDIA_CLEANUP_ALERT_AFTER": "3650d",
        "MEDIA_UPLOAD_ALLOWED_TYPES": ["image/png", "application/pdf"],
        "LOG_LEVEL": "INFO",
        "MEDIA_STORAGE": "filesystem",
        "CSRF_TRUSTED_ORIGINS": ["https://media.example.ge", "https://*.example.ge"],
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_the_sweeps_defaults_are_read_from_the_settings_alone():
    names = (
        "MEDIA_CLEANUP_MIN_AGE",
        "MEDIA_CLEANUP_MAX_DELETE_RATIO",
        "MEDIA_CLEANUP_CAP_MIN_ITEMS",
        "MEDIA_CLEANUP_HISTORY_DAYS",
        "MEDIA_CLEANUP_QUARANTINE_DAYS",
        "MEDIA_CLEANUP_QUARANTINE_PREFIX",
        "MEDIA_CLEANUP_QUARANTINE_ROOT",
        "MEDIA_UPLOAD_MAX_BYTES",
        "MEDIA_UPLOAD_ALLOWED_TYPES",
        "MEDIA_CLEANUP_ALERT_AFTER",
        "CRONTAB_EXECUTABLE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
    )

    values = settings_values(*names, SECRET_KEY="k")

    assert values == {
        "MEDIA_CLEANUP_MIN_AGE": "24h",
        "MEDIA_CLEANUP_MAX_DELETE_RATIO": 0.5,
        "MEDIA_CLEANUP_CAP_MIN_ITEMS": 10,
        "MEDIA_CLEANUP_HISTORY_DAYS": 90,
        "MEDIA_CLEANUP_QUARANTINE_DAYS": 7,
        "MEDIA_CLEANUP_QUARANTINE_PREFIX": "quarantine/",
        "MEDIA_CLEANUP_QUARANTINE_ROOT": str(settings.BASE_DIR / "var" / "quarantine"),
        "MEDIA_UPLOAD_MAX_BYTES": 10 * 1024 * 1024,
        "MEDIA_UPLOAD_ALLOWED_TYPES": [
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/webp",
            "application/pdf",
        ],
        "MEDIA_CLEANUP_ALERT_AFTER": "2d",
        "CRONTAB_EXECUTABLE": "/usr/bin/crontab",
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_an_empty_variable_takes_the_default():
    values = settings_values(
        "DEBUG", "MEDIA_CLEANUP_MAX_DELETE_RATIO", SECRET_KEY="k", DEBUG="", MEDIA_CLEANUP_MAX_DELETE_RATIO=""
    )

    assert values == {"DEBUG": False, "MEDIA_CLEANUP_MAX_DELETE_RATIO": 0.5}


# -- each database its own media folder by default --------------------------------------------


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("postgres://postgres@127.0.0.1:5432/postgres", "postgresql-postgres"),
        ("postgresql://tours:secret@localhost/tours", "postgresql-tours"),
        ("pgsql://tours@127.0.0.1:5433/tours", "postgresql-tours-5433"),
        ("postgres://tours@db.example.ge:5432/tours", "postgresql-tours-db.example.ge-5432"),
        ("postgres://tours@/tours?host=/var/run/postgresql", "postgresql-tours"),
    ],
)
def test_media_root_defaults_to_a_folder_of_the_database(url, folder):
    values = settings_values("MEDIA_ROOT", SECRET_KEY="k", DATABASE_URL=url)

    assert values["MEDIA_ROOT"] == str(settings.BASE_DIR / "media" / folder)


def test_two_sqlite_files_of_one_name_get_two_media_folders(tmp_path):
    first, second = (
        settings_values(
            "MEDIA_ROOT", SECRET_KEY="k", DATABASE_URL=f"sqlite:///{tmp_path / folder / 'db.sqlite3'}"
        )
        for folder in ("a", "b")
    )

    assert first != second
    assert Path(first["MEDIA_ROOT"]).name.startswith("sqlite-db-")


def test_an_explicit_media_root_wins_over_the_folder_of_the_database():
    values = settings_values(
        "MEDIA_ROOT",
        SECRET_KEY="k",
        DATABASE_URL="postgres://postgres@127.0.0.1/postgres",
        MEDIA_ROOT="/srv/media",
    )

    assert values["MEDIA_ROOT"] == "/srv/media"


# -- production switches ----------------------------------------------------------------------

PRODUCTION = {
    "SECRET_KEY": "x7-Qk2vP9mZ_a4Lr8NwT3yB6cE1hJ5uD0fG-sKoViXqRtYp2Wn",
    "DEBUG": "off",
    "ALLOWED_HOSTS": "media.example.ge",
}
SWITCHES = {
    "SECURE_SSL_REDIRECT": "on",
    "SESSION_COOKIE_SECURE": "on",
    "CSRF_COOKIE_SECURE": "on",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "on",
    "SECURE_HSTS_PRELOAD": "on",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def test_the_production_switches_leave_no_security_warning():
    result = manage(
        "check", "--deploy", "--tag", "security", "--fail-level", "WARNING", **PRODUCTION, **SWITCHES
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_the_switches_the_security_warnings_are_there():
    result = manage("check", "--deploy", "--tag", "security", **PRODUCTION)

    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in result.stderr


def test_the_example_env_file_loads_as_it_is():
    result = manage("check", ENV_FILE=str(settings.BASE_DIR / ".env.example"))

    assert result.returncode == 0, result.stderr


def test_every_variable_the_settings_read_is_documented_in_the_example():
    source = (settings.BASE_DIR / "mediaproject" / "settings.py").read_text()
    example = (settings.BASE_DIR / ".env.example").read_text()

    read = set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", source))

    assert len(read) > 30
    assert {name for name in read if f"{name}=" not in example} == set()


# -- the metrics file for Prometheus ------------------------------------------------------------

METRICS_FILE_EXAMPLE = "/var/lib/node_exporter/textfile/media_cleanup.prom"


@pytest.mark.parametrize("value", ["media_cleanup.prom", "/var/lib/node_exporter/textfile/media_cleanup.txt"])
def test_a_metrics_file_that_node_exporter_would_not_read_is_refused(value):
    result = manage("check", SECRET_KEY="k", MEDIA_CLEANUP_METRICS_FILE=value)

    assert_refused_in_one_line(result, "MEDIA_CLEANUP_METRICS_FILE", value)
    assert f"expected an absolute path ending with .prom, such as {METRICS_FILE_EXAMPLE}" in result.stderr


def test_no_metrics_file_is_written_unless_one_is_set():
    unset = settings_values("MEDIA_CLEANUP_METRICS_FILE", SECRET_KEY="k")
    written = settings_values(
        "MEDIA_CLEANUP_METRICS_FILE", SECRET_KEY="k", MEDIA_CLEANUP_METRICS_FILE=METRICS_FILE_EXAMPLE
    )

    assert unset == {"MEDIA_CLEANUP_METRICS_FILE": ""}
    assert written == {"MEDIA_CLEANUP_METRICS_FILE": METRICS_FILE_EXAMPLE}


# -- alerts and Sentry ------------------------------------------------------------------------

BAD_ALERT_SETTINGS = [
    ("ADMINS", "Tamar Beridze tamar@example.ge"),
    ("ADMINS", "tamar@example.ge, ops"),
    ("SERVER_EMAIL", "tours"),
    ("SERVER_EMAIL", "tours@example.ge, ops@example.ge"),
    ("EMAIL_URL", "mail.example.ge:587"),
    ("EMAIL_URL", "pop3://mail.example.ge"),
    ("EMAIL_URL", "smtps://mail.example.ge"),
    ("EMAIL_URL", "smtp://"),
    ("EMAIL_URL", "smtp://mail.example.ge:port"),
    ("EMAIL_URL", "smtp://mail.example.ge?use_tls=false"),
    ("EMAIL_URL", "filemail:///var/mail/tours"),
    ("EMAIL_TIMEOUT", "0"),
    ("SITE_URL", "media.example.ge"),
    ("MEDIA_CLEANUP_ALERT_ON", "failed,crashed"),
    ("MEDIA_CLEANUP_ALERT_ON", "locked"),
    ("SENTRY_DSN", "https://o1.ingest.sentry.io/42"),
    ("SENTRY_DSN", "https://key@o1.ingest.sentry.io/"),
    ("SENTRY_DSN", "key@o1.ingest.sentry.io/42"),
]


@pytest.mark.parametrize(
    ("name", "value"), BAD_ALERT_SETTINGS, ids=[f"{n}={v[:24]}" for n, v in BAD_ALERT_SETTINGS]
)
def test_a_bad_alert_setting_stops_check_in_one_line_naming_it(name, value):
    result = manage("check", SECRET_KEY="k", **{name: value})

    assert_refused_in_one_line(result, name, value)


@pytest.mark.parametrize(
    "url",
    ["smtp+tls://tours:hunter2@mail.example.ge:99999", "pop3://tours:hunter2@mail.example.ge"],
)
def test_a_refused_email_url_never_shows_its_password(url):
    result = manage("check", SECRET_KEY="k", EMAIL_URL=url)

    assert result.returncode == 2
    assert "hunter2" not in result.stderr
    assert "tours:***@mail.example.ge" in result.stderr


def test_smtps_is_refused_with_the_two_it_may_mean():
    result = manage("check", SECRET_KEY="k", EMAIL_URL="smtps://mail.example.ge")

    assert "smtp+ssl:// (TLS from the start, port 465) or smtp+tls:// (STARTTLS, port 587)" in result.stderr


EMAIL_SETTINGS = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
)
SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://localhost:25", (SMTP, "localhost", 25, "", "", False, False)),
        ("smtp://mail.example.ge", (SMTP, "mail.example.ge", 25, "", "", False, False)),
        (
            "smtp+tls://tours%40example.ge:p%40ss%2Fword@mail.example.ge:2587",
            (SMTP, "mail.example.ge", 2587, "tours@example.ge", "p@ss/word", True, False),
        ),
        ("smtp+tls://mail.example.ge", (SMTP, "mail.example.ge", 587, "", "", True, False)),
        ("smtp+ssl://u:p@mail.example.ge", (SMTP, "mail.example.ge", 465, "u", "p", False, True)),
    ],
)
def test_email_url_is_read_by_django_environ_with_the_ports_of_the_standards(url, expected):
    values = settings_values(*EMAIL_SETTINGS, SECRET_KEY="k", EMAIL_URL=url)

    assert tuple(values[name] for name in EMAIL_SETTINGS) == expected


def test_the_other_email_backends_by_url():
    console = settings_values("EMAIL_BACKEND", SECRET_KEY="k", EMAIL_URL="consolemail://")
    files = settings_values(
        "EMAIL_BACKEND", "EMAIL_FILE_PATH", SECRET_KEY="k", EMAIL_URL="filemail:////var/mail/tours"
    )

    assert console == {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    assert files == {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": "/var/mail/tours",
    }


def test_the_alert_settings_load_as_written():
    values = settings_values(
        "ADMINS",
        "SERVER_EMAIL",
        "SITE_URL",
        "EMAIL_TIMEOUT",
        "MEDIA_CLEANUP_ALERT_ON",
        SECRET_KEY="k",
        ADMINS='Tamar Beridze <tamar@example.ge>, "Ops, night" <ops@example.ge>, root@localhost',
        SERVER_EMAIL="Tours <tours@example.ge>",
        SITE_URL="https://media.example.ge",
        EMAIL_TIMEOUT="30",
        MEDIA_CLEANUP_ALERT_ON="failed, ok",
    )

    assert values == {
        "ADMINS": [
            ["Tamar Beridze", "tamar@example.ge"],
            ["Ops, night", "ops@example.ge"],
            ["", "root@localhost"],
        ],
        "SERVER_EMAIL": "Tours <tours@example.ge>",
        "SITE_URL": "https://media.example.ge",
        "EMAIL_TIMEOUT": 30,
        "MEDIA_CLEANUP_ALERT_ON": ["failed", "ok"],
    }


def test_the_alert_settings_default_to_no_admins_and_djangos_local_mail_server():
    values = settings_values(
        "ADMINS",
        "SERVER_EMAIL",
        "SITE_URL",
        "EMAIL_TIMEOUT",
        "MEDIA_CLEANUP_ALERT_ON",
        "SENTRY_DSN",
        *EMAIL_SETTINGS,
        SECRET_KEY="k",
    )

    assert values == {
        "ADMINS": [],
        "SERVER_EMAIL": "root@localhost",
        "SITE_URL": "",
        "EMAIL_TIMEOUT": 10,
        "MEDIA_CLEANUP_ALERT_ON": ["failed", "errors", "refused", "interrupted"],
        "SENTRY_DSN": "",
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": "localhost",
        "EMAIL_PORT": 25,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
    }


def test_every_status_a_runs_end_is_announced_with_may_be_chosen():
    from media_app.models import CleanupRun

    # Every status but running (no end yet) and locked (a run that never started announces nothing).
    announced = [status for status in CleanupRun.Status if status not in ("running", "locked")]

    values = settings_values(
        "MEDIA_CLEANUP_ALERT_ON", SECRET_KEY="k", MEDIA_CLEANUP_ALERT_ON=",".join(announced)
    )

    assert values["MEDIA_CLEANUP_ALERT_ON"] == announced


def test_sentry_dsn_without_sentry_sdk_stops_every_command_in_one_line():
    program = (
        "import runpy, sys; sys.modules['sentry_sdk'] = None; sys.argv = ['manage.py', 'check']; "
        "runpy.run_path('manage.py', run_name='__main__')"
    )

    result = run_settings(program, SECRET_KEY="k", SENTRY_DSN="https://key@o1.ingest.sentry.io/42")

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("SENTRY_DSN is set, but sentry-sdk is not installed")
    assert "`pip install sentry-sdk`" in result.stderr
