"""A storage knows which database it belongs to: a sweep never empties another database's storage."""

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from media_app.cleanup.backends import backend_for
from media_app.cleanup.backends.base import MARKER_NAME, Marker
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.restore import restore_run
from media_app.models import CleanupRun, DatabaseIdentity, Media
from tests import factories
from tests.backends import later
from tests.conftest import tree

pytestmark = pytest.mark.django_db(transaction=True)

FOREIGN = "0c5e1f3a-0000-4000-8000-000000000001"


def marker():
    """Return the storage's marker as it is now, or None."""
    return backend_for(default_storage).marker_store().read()


def mark_for_another_database():
    backend_for(default_storage).marker_store().write(
        Marker(FOREIGN, label="postgresql production", host="app1")
    )


def this_database():
    return DatabaseIdentity.current("default")


def claim(*args):
    """Run ``cleanup_media --claim-storage``; return (stdout, error, exit code)."""
    out = io.StringIO()
    try:
        call_command("cleanup_media", "--claim-storage", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue(), str(exc), exc.returncode
    return out.getvalue(), "", 0


@pytest.fixture
def drift(backend):
    """A live row, an orphaned row and an old stray file: what a sweep of this storage would remove."""
    live = factories.media(factories.tour())
    owner = factories.tour()
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    stray = backend.put("uploads/tours/stray.jpg")
    return live, orphan, stray


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_storage_marked_for_another_database_is_refused_and_nothing_moves(backend, drift, dry_run):
    live, orphan, stray = drift
    mark_for_another_database()
    before = backend.names()

    result = run_cleanup(dry_run=dry_run, force=True, now=later())

    assert (result.status, result.exit_code) == ("refused", 1)
    assert (result.files_checked, result.deleted_records, result.deleted_files) == (0, 0, 0)
    assert backend.names() == before
    assert Media.objects.filter(pk=orphan.pk).exists()
    where = "MEDIA_ROOT" if backend.name == "filesystem" else f"bucket s3://{backend.bucket}"
    assert where in result.message
    assert FOREIGN in result.message and this_database() in result.message
    assert "--claim-storage" in result.message
    assert marker().database == FOREIGN, "a refused run leaves the marker as it was"


def test_the_first_real_run_marks_the_storage_and_a_dry_run_does_not(backend, drift):
    run_cleanup(dry_run=True, now=later())
    assert marker() is None

    result = run_cleanup(now=later())

    assert result.status == "ok"
    assert marker().database == this_database()
    assert MARKER_NAME not in str(result.sample), "the marker is never listed as an upload"


def test_the_marker_is_never_listed_nor_removed_as_an_upload(backend, drift):
    run_cleanup(now=later())

    again = run_cleanup(min_age=0, now=later(days=30))

    assert (again.status, again.orphaned_files, again.files_checked) == ("ok", 0, 1)
    assert marker().database == this_database()


def test_an_unmarked_storage_holding_none_of_the_referenced_files_is_refused(backend, settings):
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 3
    owner = factories.tour()
    rows = [factories.media(owner) for _ in range(3)]
    for row in rows:
        backend.remove(row.file.name)
    stray = backend.put("uploads/tours/another-installations-photo.jpg")

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.exit_code) == ("refused", 1)
    setting = "MEDIA_ROOT" if backend.name == "filesystem" else "AWS_STORAGE_BUCKET_NAME"
    assert f"holds none of the 3 files this database references: is {setting} right?" in result.message
    assert backend.exists(stray) and marker() is None


def test_an_unmarked_storage_is_swept_when_the_database_references_fewer_than_the_floor(backend, settings):
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = 3
    owner = factories.tour()
    rows = [factories.media(owner) for _ in range(2)]
    for row in rows:
        backend.remove(row.file.name)
    stray = backend.put("uploads/tours/stray.jpg")

    result = run_cleanup(now=later())

    assert (result.status, result.missing_files, result.deleted_files) == ("ok", 2, 1)
    assert not backend.exists(stray) and marker().database == this_database()


def test_a_missing_media_root_is_refused_and_named(media_root, settings):
    factories.media(factories.tour())
    settings.MEDIA_ROOT = str(media_root / "not-there")

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.exit_code) == ("refused", 1)
    assert f"MEDIA_ROOT {media_root / 'not-there'} does not exist: is MEDIA_ROOT right?" in result.message
    assert not (media_root / "not-there").exists(), "a refused run creates nothing"


def test_the_action_on_selected_media_is_refused_on_another_databases_storage(backend, drift):
    _, orphan, _ = drift
    mark_for_another_database()

    result = run_cleanup(media_ids=[orphan.pk])

    assert result.status == "refused"
    assert Media.objects.filter(pk=orphan.pk).exists() and backend.exists(orphan.file.name)


def test_claim_storage_binds_the_storage_to_this_database_on_purpose(backend, drift):
    _, orphan, stray = drift
    mark_for_another_database()

    out, error, code = claim()

    assert (code, error) == (0, "")
    assert f"now belongs to this database ({this_database()}), no longer to {FOREIGN}" in out
    assert marker().database == this_database()
    result = run_cleanup(now=later())
    assert (result.status, result.deleted_records) == ("ok", 1)
    assert not backend.exists(stray)


def test_claim_storage_of_an_unmarked_and_of_its_own_storage_says_so(backend):
    first, _, _ = claim()
    second, _, _ = claim()

    assert "is now marked as the storage of this database" in first
    assert "was already this database's" in second


def test_claim_storage_of_a_missing_media_root_is_refused(media_root, settings):
    settings.MEDIA_ROOT = str(media_root / "not-there")

    out, error, code = claim()

    assert code == 1 and "does not exist: is MEDIA_ROOT right?" in error
    assert not (media_root / "not-there").exists()


@pytest.mark.parametrize("content", [b"{not json", b'{"database": "\xff\xfe"'], ids=["not-json", "not-utf-8"])
def test_a_corrupt_marker_fails_the_run_and_removes_nothing(backend, drift, content):
    _, _, stray = drift
    backend.put(MARKER_NAME, content)

    result = run_cleanup(force=True, now=later())
    _, error, code = claim()

    assert result.status == "failed" and MARKER_NAME in result.message
    assert "is not readable" in result.message and "--claim-storage" in result.message
    assert code == 1 and MARKER_NAME in error and "is not readable" in error
    assert backend.exists(stray)


def test_a_second_database_on_the_same_media_root_touches_nothing_of_the_first(
    manage_py, media_root, tmp_path
):
    """The two-databases mistake for real: another database's demo, run on this MEDIA_ROOT."""
    live = [factories.media(factories.guide()) for _ in range(3)]
    assert run_cleanup(now=later()).status == "ok"
    mine = tree(media_root)
    other = {"DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}"}
    assert manage_py("migrate", "--no-input", "-v", "0", env=other).returncode == 0
    assert manage_py("load_demo_data", "-v", "0", env=other).returncode == 0

    for options in (["--dry-run"], [], ["--force"]):
        done = manage_py("cleanup_media", "--json", "--min-age=0", *options, env=other)

        assert done.returncode == 1, done.stderr
        report = json.loads(done.stdout)
        assert report["status"] == "refused" and report["deleted_files"] == 0
        assert this_database() in report["message"] and f"MEDIA_ROOT {media_root}" in report["message"]
    after = tree(media_root)
    assert {path: after.get(path) for path in mine} == mine
    assert all(default_storage.exists(row.file.name) for row in live)
    assert marker().database == this_database()


def test_claim_storage_through_the_real_command_line(manage_py, media_root):
    mark_for_another_database()

    done = manage_py("cleanup_media", "--claim-storage")

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "now belongs to this database" in done.stdout
    assert marker().database == this_database()


# -- the quarantine is bound too ------------------------------------------------------------------


@pytest.fixture
def quarantined(backend, settings):
    """A real run of this database that quarantined a stray file (beside a live row)."""
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    factories.media(factories.tour())
    backend.put("uploads/tours/stray.jpg")
    result = run_cleanup(now=later())
    assert (result.status, result.deleted_files) == ("ok", 1)
    return result.run_id


def quarantine_of_another_database(run_id=None, **meta):
    """Quarantine a run as another database would have (its id in meta.json); return its id."""
    run_id = run_id or str(uuid.uuid4())
    quarantine = backend_for(default_storage).quarantine()
    quarantine.begin(run_id, timezone.now() - timedelta(days=30), **meta)
    quarantine.record(run_id, 1, [{"kind": "file", "name": "uploads/tours/theirs.jpg", "size": 6}])
    return run_id


def restore(*args):
    """Run ``restore_media``; return (stdout, error, exit code)."""
    out = io.StringIO()
    try:
        call_command("restore_media", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue(), str(exc), exc.returncode
    return out.getvalue(), "", 0


def test_restore_media_lists_only_this_databases_runs(backend, quarantined):
    theirs = quarantine_of_another_database(database=FOREIGN)
    legacy_mine = quarantine_of_another_database()  # written before runs named their database
    CleanupRun.objects.create(id=legacy_mine, started_at=timezone.now(), status="ok")
    quarantine_of_another_database()  # an unnamed run this database's history does not know

    out, error, code = restore("--list", "--json")

    assert (code, error) == (0, "")
    assert sorted(run["run_id"] for run in json.loads(out)) == sorted([quarantined, legacy_mine])
    assert theirs not in out


def test_restoring_another_databases_run_is_refused_and_moves_nothing(backend, quarantined):
    theirs = quarantine_of_another_database(database=FOREIGN)
    before = backend.names()

    out, error, code = restore(theirs)

    assert code == 1
    assert f"run {theirs} was quarantined by database {FOREIGN}" in error and this_database() in error
    assert backend.names() == before


def test_a_restore_on_a_storage_marked_for_another_database_is_refused(backend, quarantined):
    mark_for_another_database()
    before = backend.names()

    result = restore_run(quarantined)

    assert (result.status, result.exit_code) == ("refused", 1)
    assert FOREIGN in result.message and "--claim-storage" in result.message
    assert backend.names() == before


def test_a_restore_of_this_databases_run_still_works(backend, quarantined):
    _, _, code = restore(quarantined)

    assert code == 0 and backend.exists("uploads/tours/stray.jpg")


def test_a_sweep_never_purges_another_databases_quarantined_run(backend, quarantined):
    theirs = quarantine_of_another_database(database=FOREIGN)

    result = run_cleanup(purge_quarantine=True, now=later(days=60))

    assert result.status == "ok" and result.purged_runs == 1
    runs, problems = backend_for(default_storage).quarantine().runs()
    assert theirs in runs and quarantined not in runs and problems == []


def test_a_restore_with_the_database_out_of_reach_fails_in_one_line(manage_py):
    run_id = str(uuid.uuid4())

    done = manage_py("restore_media", run_id, env={"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"})

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("CommandError: restore failed: cannot reach the database")
