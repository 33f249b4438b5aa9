import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from hypothesis import settings as hypothesis_settings

# Property tests run the same examples on every run (``derandomize``), so that CI is
# reproducible, and keep no example database (hypothesis still caches in ``.hypothesis/``,
# which git ignores). Set HYPOTHESIS_PROFILE=explore to draw new examples each run.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, database=None)
hypothesis_settings.register_profile("explore", deadline=None, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The named SQLite test database (see settings) lives here.
(Path(django_settings.BASE_DIR) / "var").mkdir(exist_ok=True)


def _missing_system_dep(message):
    if os.environ.get("REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(message + " (REQUIRE_SYSTEM_DEPS=1 forbids skipping)")
    pytest.skip(message)


def require_tool(name):
    """Return the path of a system binary; skip without it, or fail under REQUIRE_SYSTEM_DEPS=1."""
    path = shutil.which(name)
    if path:
        return path
    _missing_system_dep(f"`{name}` is not installed: run `make system-deps` to install it")


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


def tree(root):
    """Return every path under root (files, links and folders) with its content or link target."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                found[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[path] = ("dir", None)
            else:
                with open(path, "rb") as handle:
                    found[path] = ("file", handle.read())
    return found


def child_environment(settings, env=None):
    """Return the environment of a child process that sees the test database, MEDIA_ROOT and quarantine."""
    return {
        **os.environ,
        "ENV_FILE": "",
        "SECRET_KEY": "test-only",
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MEDIA_CLEANUP_QUARANTINE_ROOT": str(settings.MEDIA_CLEANUP_QUARANTINE_ROOT),
        **(env or {}),
    }


@pytest.fixture
def manage_py(media_root, settings):
    """Run ``python manage.py ...`` for real, against the test database and MEDIA_ROOT."""

    def run(*args, env=None, timeout=120, exact_env=None):
        """``exact_env`` replaces the whole environment (as cron's would); ``env`` adds to the test's."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=exact_env or child_environment(settings, env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
