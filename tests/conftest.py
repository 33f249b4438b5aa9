import os
import pwd
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from hypothesis import settings as hypothesis_settings

from tests.backends import FilesystemBackend, S3Backend, s3_options

# Property tests run the same examples on every run (``derandomize``), so that CI is
# reproducible, and keep no example database (hypothesis still caches in ``.hypothesis/``,
# which git ignores). Set HYPOTHESIS_PROFILE=explore to draw new examples each run.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, database=None)
hypothesis_settings.register_profile("explore", deadline=None, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The named SQLite test database (see settings) lives here.
(Path(django_settings.BASE_DIR) / "var").mkdir(exist_ok=True)
FILESYSTEM_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
S3_STORAGE = "storages.backends.s3.S3Storage"


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
    """Give every test its own MEDIA_ROOT and quarantine, on local storage whatever MEDIA_STORAGE says."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = str(tmp_path / "quarantine")
    settings.STORAGES = {**settings.STORAGES, "default": FILESYSTEM_STORAGE}
    return root


# What moto's server (werkzeug) logs once it listens, with the port the system gave it.
LISTENING = re.compile(rb"Running on (http://127\.0\.0\.1:\d+)")


def start_moto_server(log_path, timeout=30):
    """Start ``python -m moto.server`` on a loopback port the system picks; return the process and URL."""
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while server.poll() is None and time.monotonic() < deadline:
        listening = LISTENING.search(log_path.read_bytes())
        if listening:
            return server, listening.group(1).decode()
        time.sleep(0.1)
    server.kill()
    server.wait()
    pytest.fail(f"the S3-protocol test server (moto) did not start; see {log_path}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """Run moto's S3-protocol server on loopback for the whole session; yield its URL."""
    server, url = start_moto_server(tmp_path_factory.mktemp("moto") / "server.log")
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def s3_backend(s3_server, media_root, settings):
    """Point the default storage at a fresh bucket of the test server, as MEDIA_STORAGE=s3 would.

    Buckets are not removed: they live in the server's memory and go with it at the session's end.
    """
    bucket = f"test-{uuid.uuid4().hex}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": S3_STORAGE, "OPTIONS": s3_options(s3_server, bucket)},
    }
    client = default_storage.connection.meta.client
    client.create_bucket(Bucket=bucket)
    return S3Backend(client, bucket)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, media_root, settings):
    """Run the test on local files and on an S3 bucket: the storage rules hold on both."""
    if request.param == "s3":
        return request.getfixturevalue("s3_backend")
    return FilesystemBackend(media_root, settings)


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
        "MEDIA_STORAGE": "filesystem",
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
