"""Settings for the tour-media project, read from the environment and an optional ``.env``.

Every variable is documented in ``.env.example`` and the README, and checked as it is read
(``mediaproject/environment.py``): a value the project cannot use stops every command and the
web server at once, in one line. The environment wins over ``.env``; ``ENV_FILE`` names another
file (an empty value reads none). An unset or empty variable takes the default written here,
the one place for defaults (``media_app/conf.py`` reads these settings).
"""

import shlex
from datetime import UTC, datetime
from pathlib import Path

from media_app import schedule
from media_app.paths import UPLOADS_PREFIX
from media_app.upload_types import EXTENSIONS
from mediaproject.environment import Env, SettingError, database_label, is_host, is_origin, refusal

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
ENV_FILE = env.read_env_file("ENV_FILE", default=BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise SettingError(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(`make demo` or `make serve` writes a local .env with a generated key), "
            "or set DEBUG=on for local development."
        )
    SECRET_KEY = "insecure-development-key-debug-only"

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS",
    default=["localhost", "127.0.0.1", "[::1]"],
    valid=is_host,
    accepts="host names separated by commas, without scheme or path, such as media.example.ge",
)
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[],
    valid=is_origin,
    accepts="origins separated by commas, each with its scheme, such as https://media.example.ge",
)

# Production switches (all off by default, for local HTTP): with them set behind HTTPS,
# `manage.py check --deploy` has no security warning left.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0, minimum=0, example=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a proxy that ends TLS: the header it sets and the value that means HTTPS.
SECURE_PROXY_SSL_HEADER = env.proxy_ssl_header("SECURE_PROXY_SSL_HEADER")

# Error pages and reports (DEBUG's and mail_admins') never show a password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "mediaproject.error_reports.RedactingExceptionReporterFilter"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    "tours",
    # Before django_crontab: its `crontab` command takes the place of django-crontab's.
    "media_app",
    "django_crontab",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mediaproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mediaproject.wsgi.application"

# Database: SQLite in the project folder unless DATABASE_URL says otherwise
# (postgres://user@host:5432/name for PostgreSQL). Nothing else changes between the two.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A named test database, so that a `manage.py` subprocess started by a test sees
    # the same data; the timeout lets concurrent writers wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 30)
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test_db.sqlite3")}

AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The IANA name is Asia/Tbilisi; "Europe/Tbilisi" does not exist.
TIME_ZONE = env.time_zone("TIME_ZONE", default="Asia/Tbilisi")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static", example="/srv/tours/static")

# Each database gets its own folder by default, so that two databases tried from one checkout
# (SQLite, then PostgreSQL) never see each other's files as orphans.
MEDIA_ROOT = env.path(
    "MEDIA_ROOT",
    default=BASE_DIR / "media" / database_label(DATABASES["default"], BASE_DIR),
    example="/srv/tours/media",
)
MEDIA_URL = env.url_prefix("MEDIA_URL", default="/media/", example="/media/")

# Where uploads live: "filesystem" (MEDIA_ROOT) or "s3" (a bucket of AWS S3 or of any
# S3-compatible server, through django-storages). Nothing else changes between the two.
MEDIA_STORAGE = env.choice("MEDIA_STORAGE", default="filesystem", choices=("filesystem", "s3"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# On S3, the sweep lists key ranges and sends DeleteObjects calls on this many connections at
# once; the S3 client's pool is sized to allow them. 64 bring keys faster than the sweep compares
# them with the database even at 200 ms a round trip (docs/benchmarks.md): more only add threads.
S3_MAX_CONNECTIONS = 64
MEDIA_CLEANUP_S3_LIST_CONCURRENCY = env.int(
    "MEDIA_CLEANUP_S3_LIST_CONCURRENCY", default=16, minimum=1, example=16
)
if MEDIA_CLEANUP_S3_LIST_CONCURRENCY > S3_MAX_CONNECTIONS:
    raise refusal(
        "MEDIA_CLEANUP_S3_LIST_CONCURRENCY",
        env.raw("MEDIA_CLEANUP_S3_LIST_CONCURRENCY"),
        f"a whole number from 1 to {S3_MAX_CONNECTIONS}, such as 16",
    )
if MEDIA_STORAGE == "s3":
    from botocore.config import Config
    from botocore.endpoint import MAX_POOL_CONNECTIONS

    AWS_RETRY_MODE = env.choice("AWS_RETRY_MODE", default="standard", choices=("standard", "adaptive"))
    # Attempts per request, the first included.
    AWS_MAX_ATTEMPTS = env.int("AWS_MAX_ATTEMPTS", default=10, minimum=1, example=10)
    AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME")
    if not AWS_STORAGE_BUCKET_NAME:
        raise SettingError("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME, the bucket's name.")
    AWS_LOCATION = env.str("AWS_LOCATION")
    if AWS_LOCATION.startswith("/"):
        raise refusal("AWS_LOCATION", AWS_LOCATION, "a key prefix without a leading '/', such as media")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.url("AWS_S3_ENDPOINT_URL", default=None, example="https://s3.example.ge"),
            # Unset keys leave boto3 to its own chain (instance role, ~/.aws, ...).
            "access_key": env.str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY") or None,
            "region_name": env.str("AWS_S3_REGION_NAME") or None,
            "location": AWS_LOCATION,
            # Private objects: no ACL is sent, so objects take the bucket's default (private on
            # AWS); a canned "private" ACL would be refused by buckets with ACLs disabled, AWS's
            # default since 2023. Links are signed and expire.
            "default_acl": None,
            "querystring_auth": True,
            # Two uploads of one name must never replace each other's file.
            "file_overwrite": False,
            # Throttling (503 SlowDown) and transient errors are retried by botocore itself,
            # with backoff. A client config replaces django-storages' own, so the addressing
            # style goes in here too.
            "client_config": Config(
                retries={"mode": AWS_RETRY_MODE, "total_max_attempts": AWS_MAX_ATTEMPTS},
                max_pool_connections=max(MAX_POOL_CONNECTIONS, MEDIA_CLEANUP_S3_LIST_CONCURRENCY),
                s3={
                    "addressing_style": env.choice(
                        "AWS_S3_ADDRESSING_STYLE", default=None, choices=("auto", "virtual", "path")
                    )
                },
            ),
        },
    }

LOG_LEVEL = env.choice(
    "LOG_LEVEL", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# The cleanup sweep (`manage.py cleanup_media`); see media_app/conf.py for how they are used.
# Grace period: files younger than this are never removed as orphans (0, 3600, 90s, 30m, 6h, 2d).
MEDIA_CLEANUP_MIN_AGE = env.duration("MEDIA_CLEANUP_MIN_AGE", default="24h", allow_zero=True)
# Safety cap: refuse a run that would delete more than this share of the files or of the rows...
MEDIA_CLEANUP_MAX_DELETE_RATIO = env.float(
    "MEDIA_CLEANUP_MAX_DELETE_RATIO", default=0.5, minimum=0, maximum=1, example=0.5
)
# ...and more than this many items of that kind.
MEDIA_CLEANUP_CAP_MIN_ITEMS = env.int("MEDIA_CLEANUP_CAP_MIN_ITEMS", default=10, minimum=0, example=10)
# Run history older than this many days is purged by the sweep.
MEDIA_CLEANUP_HISTORY_DAYS = env.int("MEDIA_CLEANUP_HISTORY_DAYS", default=90, minimum=0, example=90)
# Quarantine: a real sweep moves what it removes there, for this many days (0: delete at once)...
MEDIA_CLEANUP_QUARANTINE_DAYS = env.int("MEDIA_CLEANUP_QUARANTINE_DAYS", default=7, minimum=0, example=7)
# ...into this folder, outside MEDIA_ROOT and never served (local files), or under this key
# prefix, outside uploads/ and private (S3).
MEDIA_CLEANUP_QUARANTINE_PREFIX = env.key_prefix(
    "MEDIA_CLEANUP_QUARANTINE_PREFIX", default="quarantine/", outside=UPLOADS_PREFIX
)
MEDIA_CLEANUP_QUARANTINE_ROOT = env.path(
    "MEDIA_CLEANUP_QUARANTINE_ROOT", default=BASE_DIR / "var" / "quarantine", example="/srv/tours/quarantine"
)

# Uploads: the largest file accepted, in bytes, and the types accepted (told by content).
MEDIA_UPLOAD_MAX_BYTES = env.int(
    "MEDIA_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024, minimum=1, example=10485760
)
MEDIA_UPLOAD_ALLOWED_TYPES = env.list(
    "MEDIA_UPLOAD_ALLOWED_TYPES",
    default=EXTENSIONS,
    valid=EXTENSIONS.__contains__,
    accepts=f"types separated by commas, among {', '.join(EXTENSIONS)}",
)
# An upload past MEDIA_UPLOAD_MAX_BYTES, or under a name that no allowed type has, is stopped
# while it streams in: Django's own handlers, after it, never keep that in memory or on disk.
FILE_UPLOAD_HANDLERS = [
    "media_app.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# The schedule: five cron fields, meant in TIME_ZONE. Cron reads its lines in the host's zone,
# so CRONJOBS holds the schedule converted with the two zones' UTC offsets of today.
MEDIA_CLEANUP_SCHEDULE = env.str("MEDIA_CLEANUP_SCHEDULE", default="0 3 * * *")
# The zone cron runs in; empty: the one /etc/localtime names, UTC without it.
MEDIA_CLEANUP_HOST_TIME_ZONE = env.str("MEDIA_CLEANUP_HOST_TIME_ZONE") and env.time_zone(
    "MEDIA_CLEANUP_HOST_TIME_ZONE", default=""
)
# The cron job and the runs started from the admin append their output here.
MEDIA_CLEANUP_LOG_FILE = env.path(
    "MEDIA_CLEANUP_LOG_FILE",
    default=BASE_DIR / "var" / "log" / "cleanup_media.log",
    example="/var/log/tours/cleanup_media.log",
)
# `check --deploy` warns when the last successful real run is older than this (90s, 30m, 6h, 2d).
MEDIA_CLEANUP_ALERT_AFTER = env.duration("MEDIA_CLEANUP_ALERT_AFTER", default="2d", allow_zero=False)

# Metrics for Prometheus: each run writes node_exporter's textfile format to this file (a name
# ending in .prom, all the textfile collector reads); empty: none.
MEDIA_CLEANUP_METRICS_FILE = env.path(
    "MEDIA_CLEANUP_METRICS_FILE",
    default="",
    example="/var/lib/node_exporter/textfile/media_cleanup.prom",
    suffix=".prom",
)

# django-crontab finds the job at run time by a hash of its definition, schedule included, so the
# definition is built only from the values above, which come from the environment or .env. The
# line also passes the offsets it was converted with (schedule.WRITTEN_FOR): the run converts
# with those, so its job is still found after a daylight-saving change (the health check warns).
# A schedule that cannot be converted exactly leaves CRONJOBS empty: every command works but
# `crontab add`, which says why.
try:
    _cleanup_schedule = schedule.convert(
        MEDIA_CLEANUP_SCHEDULE,
        TIME_ZONE,
        MEDIA_CLEANUP_HOST_TIME_ZONE,
        datetime.now(UTC),
        written_for=env.str(schedule.WRITTEN_FOR, default=""),
    )
except schedule.InvalidSchedule as exc:
    raise SettingError(str(exc)) from None
except schedule.ScheduleError:
    CRONJOBS = []
else:
    CRONJOBS = [(_cleanup_schedule.host_schedule, "media_app.cron.cleanup_media")]
    CRONTAB_COMMAND_PREFIX = _cleanup_schedule.line_prefix
# Whose crontab: `crontab -u USER` writes another user's (as root); the tests use that.
CRONTAB_EXECUTABLE = env.command(
    "CRONTAB_EXECUTABLE", default="/usr/bin/crontab", example="'crontab -u www-data'"
)
CRONTAB_DJANGO_MANAGE_PATH = str(BASE_DIR / "manage.py")
# `crontab add` and `remove` replace every line with this comment: naming the project folder
# keeps two checkouts that share a crontab (staging and production) from removing each other's.
CRONTAB_COMMENT = f"cleanup_media of {BASE_DIR}"
# No other variable on the line: settings.py reads <project>/.env itself, and secrets stay out
# of the crontab. The shell opens the log before the job starts: `crontab add` makes its folder.
CRONTAB_COMMAND_SUFFIX = f">> {shlex.quote(str(MEDIA_CLEANUP_LOG_FILE))} 2>&1"

# Alerts (media_app/alerts.py): a real run that ends with one of these statuses mails ADMINS once,
# through Django's mail_admins. A run's end is announced with any status but running and locked.
MEDIA_CLEANUP_ALERT_ON = env.list(
    "MEDIA_CLEANUP_ALERT_ON",
    default=["failed", "errors", "refused", "interrupted"],
    valid=("ok", "partial", "errors", "failed", "refused", "interrupted").__contains__,
    accepts="run statuses separated by commas, among ok, partial, errors, failed, refused, interrupted",
)
# Who gets them (none by default: no alert is sent), and whom they come from.
ADMINS = env.addresses("ADMINS", default=[], example="Tamar Beridze <tamar@example.ge>, ops@example.ge")
SERVER_EMAIL = env.address("SERVER_EMAIL", default="root@localhost", example="tours@example.ge")
# How they are sent: EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD,
# EMAIL_USE_TLS or EMAIL_USE_SSL, EMAIL_FILE_PATH, from one URL. The default is Django's own.
globals().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
# An alert is sent as the run ends, still holding the sweep's lock (or within an admin's request):
# a mail server that stops answering must not hold either for long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10, minimum=1, example=10)
# The site's address, for the link to the run's report; unset, the message gives the admin's path.
SITE_URL = env.url("SITE_URL", default="", example="https://media.example.ge")

# Errors to Sentry, and each scheduled run's check-in (media_app/cron_monitor.py), when set.
# sentry-sdk is then required; without a DSN nothing of it is imported.
SENTRY_DSN = env.sentry_dsn("SENTRY_DSN")
if SENTRY_DSN:
    from mediaproject.sentry import start_sentry

    start_sentry(SENTRY_DSN)
