"""Which backend serves which storage: local files and S3 get theirs, any other storage one clear refusal."""

import io
import os
import subprocess
import sys
import uuid

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse

from media_app.cleanup.backends import backend_for
from media_app.cleanup.backends.base import UnsupportedStorage
from media_app.cleanup.backends.filesystem import FilesystemMarkerStore, FilesystemWalker
from media_app.cleanup.backends.filesystem_quarantine import FilesystemQuarantine
from media_app.cleanup.engine import run_cleanup
from media_app.models import CleanupRun
from tests import factories
from tests.backends import later

pytestmark = pytest.mark.django_db(transaction=True)

IN_MEMORY_STORAGE = {"BACKEND": "django.core.files.storage.InMemoryStorage"}
REFUSAL = (
    "no cleanup backend for the media storage django.core.files.storage.memory.InMemoryStorage: "
    "the sweep supports django.core.files.storage.FileSystemStorage (local files) and "
    "storages.backends.s3.S3Storage"
)


@pytest.fixture
def unsupported_storage(settings):
    """Make the media storage one no backend serves (Django's in-memory storage)."""
    settings.STORAGES = {**settings.STORAGES, "default": IN_MEMORY_STORAGE}


def command(*args):
    """Call a command as a shell would; return (stdout, the CommandError's text, exit code)."""
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue(), str(exc), exc.returncode
    return out.getvalue(), "", 0


def test_local_files_get_the_local_walker_quarantine_and_marker_store(quarantine_root):
    backend = backend_for()

    assert isinstance(backend.walker(), FilesystemWalker)
    assert isinstance(backend.marker_store(), FilesystemMarkerStore)
    quarantine = backend.quarantine()
    assert isinstance(quarantine, FilesystemQuarantine)
    assert quarantine.root == os.path.realpath(quarantine_root), "where MEDIA_CLEANUP_QUARANTINE_ROOT says"


def test_an_unsupported_storage_is_refused_naming_its_class_and_what_is_supported(unsupported_storage):
    with pytest.raises(UnsupportedStorage) as refused:
        backend_for(default_storage)

    assert str(refused.value).startswith(REFUSAL)


def test_a_sweep_on_an_unsupported_storage_fails_in_one_line(unsupported_storage, caplog):
    result = run_cleanup(now=later())

    assert (result.status, result.exit_code) == ("failed", 1)
    assert result.message.startswith(f"the run could not go on: UnsupportedStorage: {REFUSAL}")
    assert "\n" not in result.message
    assert CleanupRun.objects.get().status == "failed"
    assert not [record for record in caplog.records if record.exc_info], "no traceback in the log"


def test_the_commands_on_an_unsupported_storage_say_so_in_one_line(unsupported_storage):
    run_id = str(uuid.uuid4())

    outcomes = {
        "cleanup_media": command("cleanup_media", "--dry-run"),
        "claim-storage": command("cleanup_media", "--claim-storage"),
        "restore_media --list": command("restore_media", "--list"),
        "restore_media RUN_ID": command("restore_media", run_id),
    }

    assert {name: code for name, (_, _, code) in outcomes.items()} == {
        "cleanup_media": 1,
        "claim-storage": 1,
        "restore_media --list": 1,
        "restore_media RUN_ID": 1,
    }
    for name, (_, error, _) in outcomes.items():
        assert REFUSAL in error and "\n" not in error, name


def test_the_admin_pages_of_a_run_work_on_an_unsupported_storage(admin_client, media_root, settings):
    factories.media(factories.tour())
    factories.stray_file(media_root, "uploads/guides/stray.jpg")
    run_id = run_cleanup(now=later()).run_id
    settings.STORAGES = {**settings.STORAGES, "default": IN_MEMORY_STORAGE}

    report = admin_client.get(reverse("admin:media_app_cleanuprun_report", args=[run_id]))
    preview = admin_client.get(reverse("admin:media_app_cleanuprun_restore", args=[run_id]))

    assert (report.status_code, preview.status_code) == (200, 200)
    assert REFUSAL in preview.content.decode()
    assert not (media_root / "uploads/guides/stray.jpg").exists(), "still in the quarantine"


def test_a_sweep_of_local_files_never_imports_boto3(settings):
    """boto3 costs a fifth of a second and 20 MiB to import: local files must not pay for it."""
    program = (
        "import sys, django; django.setup(); from django.core.files.storage import default_storage; "
        "from media_app.cleanup.backends import backend_for; from media_app.cleanup import engine; "
        "backend = backend_for(default_storage); "
        "backend.walker(); backend.quarantine(); backend.marker_store(); "
        "print(sorted(name for name in ('boto3', 'botocore') if name in sys.modules))"
    )
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mediaproject.settings",
        "ENV_FILE": "",
        "SECRET_KEY": "k",
        "MEDIA_ROOT": settings.MEDIA_ROOT,
    }

    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
