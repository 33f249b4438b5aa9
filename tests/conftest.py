import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

# The named SQLite test database (see settings) lives here.
(Path(django_settings.BASE_DIR) / "var").mkdir(exist_ok=True)


def _missing_system_dep(message):
    if os.environ.get("REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(message + " (REQUIRE_SYSTEM_DEPS=1 forbids skipping)")
    pytest.skip(message)


def require_tool(name, needed_for=""):
    """Return the path of a system binary; skip without it, or fail under REQUIRE_SYSTEM_DEPS=1."""
    path = shutil.which(name)
    if path:
        return path
    needed = f" (needed for {needed_for})" if needed_for else ""
    _missing_system_dep(f"`{name}` is not installed{needed}: run `make system-deps` to install it")


def require_system_user(name):
    """Return a system user's name; skip when it does not exist, or fail under REQUIRE_SYSTEM_DEPS=1."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        _missing_system_dep(f"the system user `{name}` does not exist: run `make system-deps` to create it")
    return name


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    """Give every test its own empty MEDIA_ROOT, and its own quarantine beside it."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = str(tmp_path / "quarantine")
    return root


@pytest.fixture
def quarantine_root(tmp_path):
    return tmp_path / "quarantine"


@pytest.fixture
def outside_dir(tmp_path):
    """A folder next to MEDIA_ROOT, standing for everything the product must never touch."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def database_url():
    """Return a DATABASE_URL for the test database, so that a subprocess sees the test data."""
    from urllib.parse import quote

    from django.db import connection

    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    password = f":{quote(database['PASSWORD'], safe='')}" if database["PASSWORD"] else ""
    user = quote(database["USER"], safe="")
    host = database["HOST"] or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{database['PORT'] or 5432}/{database['NAME']}"


@pytest.fixture
def manage_py(media_root, settings):
    """Run ``python manage.py ...`` for real, against the test database and MEDIA_ROOT."""

    def run(*args, env=None, timeout=120, exact_env=None):
        """``exact_env`` replaces the whole environment (as cron's would); ``env`` adds to the test's."""
        environment = exact_env or {
            **os.environ,
            "ENV_FILE": "",
            "SECRET_KEY": "test-only",
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(media_root),
            "MEDIA_CLEANUP_QUARANTINE_ROOT": settings.MEDIA_CLEANUP_QUARANTINE_ROOT,
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def background_runs(monkeypatch, media_root, settings, tmp_path):
    """Let the runs the admin starts see the test database, MEDIA_ROOT and quarantine; return their log.

    The view passes its own environment on to the run (in production the server's, which points
    at the same database); here that environment must name the test database, which only exists
    while the test runs, so the test sets it rather than the view rebuilding it from settings.
    """
    monkeypatch.setenv("DATABASE_URL", database_url())
    monkeypatch.setenv("MEDIA_ROOT", str(media_root))
    monkeypatch.setenv("MEDIA_CLEANUP_QUARANTINE_ROOT", settings.MEDIA_CLEANUP_QUARANTINE_ROOT)
    monkeypatch.setenv("ENV_FILE", "")
    monkeypatch.setenv("SECRET_KEY", "test-only")
    settings.MEDIA_CLEANUP_LOG_FILE = str(tmp_path / "log" / "cleanup_media.log")
    return tmp_path / "log" / "cleanup_media.log"
