"""Settings for the tour-media project, read from the environment and an optional ``.env``.

Every variable is documented in ``.env.example`` and the README. The environment wins
over ``.env``; ``ENV_FILE`` names another file (an empty value reads none).
"""

import shlex
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(`make demo` or `make serve` writes a local .env with a generated key), "
            "or set DEBUG=on for local development."
        )
    SECRET_KEY = "insecure-development-key-debug-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_crontab",
    "accounts",
    "tours",
    "media_app",
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
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Tbilisi")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")

MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = env.str("MEDIA_URL", default="/media/")

# Where uploads live: "filesystem" (MEDIA_ROOT) or "s3" (a bucket of AWS S3 or of any
# S3-compatible server, through django-storages). Nothing else changes between the two.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="filesystem")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if MEDIA_STORAGE == "s3":
    from botocore.config import Config

    AWS_RETRY_MODE = env.str("AWS_RETRY_MODE", default="standard")
    AWS_MAX_ATTEMPTS = env.int("AWS_MAX_ATTEMPTS", default=10)
    if AWS_RETRY_MODE not in ("standard", "adaptive"):
        raise ImproperlyConfigured(f"AWS_RETRY_MODE is {AWS_RETRY_MODE!r}: use standard or adaptive.")
    if AWS_MAX_ATTEMPTS < 1:
        raise ImproperlyConfigured("AWS_MAX_ATTEMPTS counts the first try too: use 1 or more.")
    if not env.str("AWS_STORAGE_BUCKET_NAME", default=""):
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME, the bucket's name.")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            # Unset keys leave boto3 to its own chain (instance role, ~/.aws, ...).
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "location": env.str("AWS_LOCATION", default=""),
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
                s3={"addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None},
            ),
        },
    }
elif MEDIA_STORAGE != "filesystem":
    raise ImproperlyConfigured(f"MEDIA_STORAGE is {MEDIA_STORAGE!r}: use filesystem (the default) or s3.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# The cleanup sweep (`manage.py cleanup_media`); see media_app/conf.py for how they are used.
# Grace period: files younger than this are never removed as orphans (0, 3600, 90s, 30m, 6h, 2d).
MEDIA_CLEANUP_MIN_AGE = env.str("MEDIA_CLEANUP_MIN_AGE", default="24h")
# Safety cap: refuse a run that would delete more than this share of the files or of the rows...
MEDIA_CLEANUP_MAX_DELETE_RATIO = env.float("MEDIA_CLEANUP_MAX_DELETE_RATIO", default=0.5)
# ...and more than this many items of that kind.
MEDIA_CLEANUP_CAP_MIN_ITEMS = env.int("MEDIA_CLEANUP_CAP_MIN_ITEMS", default=10)
# Run history older than this many days is purged by the sweep.
MEDIA_CLEANUP_HISTORY_DAYS = env.int("MEDIA_CLEANUP_HISTORY_DAYS", default=90)
# Quarantine: a real sweep moves what it removes there, for this many days (0: delete at once)...
MEDIA_CLEANUP_QUARANTINE_DAYS = env.int("MEDIA_CLEANUP_QUARANTINE_DAYS", default=7)
# ...into this folder, outside MEDIA_ROOT and never served (local files), or under this key
# prefix, outside uploads/ and private (S3).
MEDIA_CLEANUP_QUARANTINE_PREFIX = env.str("MEDIA_CLEANUP_QUARANTINE_PREFIX", default="quarantine/")
MEDIA_CLEANUP_QUARANTINE_ROOT = env.path(
    "MEDIA_CLEANUP_QUARANTINE_ROOT", default=BASE_DIR / "var" / "quarantine"
)

# Uploads: the largest file accepted, in bytes, and the types accepted (told by content).
MEDIA_UPLOAD_MAX_BYTES = env.int("MEDIA_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
MEDIA_UPLOAD_ALLOWED_TYPES = env.list(
    "MEDIA_UPLOAD_ALLOWED_TYPES",
    default=["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"],
)
# An upload past MEDIA_UPLOAD_MAX_BYTES, or under a name that no allowed type has, is stopped
# while it streams in: Django's own handlers, after it, never keep that in memory or on disk.
FILE_UPLOAD_HANDLERS = [
    "media_app.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# The schedule: django-crontab writes one crontab line per CRONJOBS entry and finds the job at
# run time by a hash of its definition, so the definition is built only from these values,
# which come from the environment or .env: `crontab add` and the run compute the same hash.
# Five cron fields, in the host's time zone (cron knows nothing of TIME_ZONE).
MEDIA_CLEANUP_SCHEDULE = env.str("MEDIA_CLEANUP_SCHEDULE", default="0 3 * * *")
if len(MEDIA_CLEANUP_SCHEDULE.split()) != 5:
    raise ImproperlyConfigured(
        f"MEDIA_CLEANUP_SCHEDULE={MEDIA_CLEANUP_SCHEDULE!r} is not five cron fields, e.g. '0 3 * * *' "
        "(django-crontab cannot find or remove a line written otherwise)."
    )
# The cron job and the runs started from the admin append their output here.
MEDIA_CLEANUP_LOG_FILE = env.path(
    "MEDIA_CLEANUP_LOG_FILE", default=BASE_DIR / "var" / "log" / "cleanup_media.log"
)
# `check --deploy` warns when the last successful real run is older than this (90s, 30m, 6h, 2d).
MEDIA_CLEANUP_ALERT_AFTER = env.str("MEDIA_CLEANUP_ALERT_AFTER", default="2d")

CRONJOBS = [(MEDIA_CLEANUP_SCHEDULE, "media_app.cron.cleanup_media")]
# Whose crontab: `crontab -u USER` writes another user's (as root); the tests use that.
CRONTAB_EXECUTABLE = env.str("CRONTAB_EXECUTABLE", default="/usr/bin/crontab")
CRONTAB_DJANGO_MANAGE_PATH = str(BASE_DIR / "manage.py")
# `crontab add` and `remove` replace every line with this comment: naming the project folder
# keeps two checkouts that share a crontab (staging and production) from removing each other's.
CRONTAB_COMMENT = f"cleanup_media of {BASE_DIR}"
# No variables on the line: settings.py reads <project>/.env itself, and secrets stay out of
# the crontab. The shell opens the log before the job starts, so its folder must exist.
CRONTAB_COMMAND_SUFFIX = f">> {shlex.quote(str(MEDIA_CLEANUP_LOG_FILE))} 2>&1"
try:
    Path(MEDIA_CLEANUP_LOG_FILE).parent.mkdir(parents=True, exist_ok=True)
except OSError:
    pass  # a server without write access there; `check --deploy` reports it (media_app.W004)
