import dataclasses
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from media_app.cleanup import engine
from media_app.cleanup.backends import backend_for
from media_app.cleanup.backends.base import NOT_A_RUN
from media_app.cleanup.backends.filesystem_quarantine import FilesystemQuarantine
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.lock import cleanup_lock
from media_app.cleanup.restore import restore_run
from media_app.models import CleanupRun, Media
from tests import factories
from tests.backends import later
from tests.conftest import tree

pytestmark = pytest.mark.django_db(transaction=True)

DRAFT, STRAY = b"draft photo", b"stray!"


@pytest.fixture
def swept(backend):
    """A sweep that quarantined an orphaned row (with its file) and a stray file, on either backend."""
    owner = factories.tour()
    factories.media(factories.tour())  # live media: the cap sees a normal library
    orphan = factories.media(owner, name="draft.jpg", content=DRAFT)
    created_at = orphan.created_at
    factories.delete_behind_the_orms_back(owner)
    stray = backend.put("uploads/guides/stray.jpg", STRAY)
    clock = later()
    result = run_cleanup(now=clock)
    assert result.status == "ok" and (result.deleted_records, result.deleted_files) == (1, 2), result.message
    return {
        "owner": owner,
        "orphan": orphan,
        "created_at": created_at,
        "stray": stray,
        "result": result,
        "clock": clock,
        "backend": backend,
    }


def restore(*args):
    """Run restore_media as a shell would; return (JSON report, exit code)."""
    out = io.StringIO()
    try:
        call_command("restore_media", *args, "--json", stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return (json.loads(out.getvalue()) if out.getvalue() else None), code


def test_a_sweep_moves_files_and_rows_to_the_quarantine(swept, backend):
    run_id, orphan = swept["result"].run_id, swept["orphan"]

    assert backend.missing([orphan.file.name, swept["stray"]]) == [orphan.file.name, swept["stray"]]
    assert backend.quarantined(run_id, orphan.file.name) == DRAFT
    assert backend.quarantined(run_id, swept["stray"]) == STRAY
    assert swept["result"].quarantined_bytes == len(DRAFT) + len(STRAY)
    assert swept["result"].bytes_freed == 0
    manifest = [
        json.loads(line)
        for part in sorted(k for k in quarantine_keys(backend, run_id) if "manifest" in k)
        for line in backend.quarantined(run_id, part).decode().splitlines()
    ]
    assert {"kind": "file", "name": swept["stray"], "size": len(STRAY)} in manifest
    (record,) = [entry for entry in manifest if entry["kind"] == "record"]
    assert (record["id"], record["file"], record["object_id"]) == (
        str(orphan.pk),
        orphan.file.name,
        str(orphan.object_id),
    )


def quarantine_keys(backend, run_id):
    """Return the names under a run's quarantine, relative to it."""
    if backend.name == "s3":
        return [key.split(f"quarantine/{run_id}/", 1)[1] for key in backend.names() if f"/{run_id}/" in key]
    folder = backend.quarantine / run_id
    return [str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()]


def test_the_quarantine_is_private_on_local_files(media_root, quarantine_root):
    factories.stray_file(media_root, "uploads/tours/stray.jpg")

    result = run_cleanup()

    assert os.stat(quarantine_root / result.run_id).st_mode & 0o077 == 0


def test_restore_brings_files_and_rows_back_once_the_owner_is_back(swept, backend):
    swept["owner"].save(force_insert=True)  # the owner comes back from a backup
    before = time.time()

    report, code = restore(swept["result"].run_id)

    orphan = swept["orphan"]
    assert code == 0
    assert (report["status"], report["restored_files"], report["restored_records"], report["skipped"]) == (
        "ok",
        2,
        1,
        0,
    )
    restored = Media.objects.get(pk=orphan.pk)
    assert (restored.file.name, restored.object_id, restored.size) == (
        orphan.file.name,
        orphan.object_id,
        orphan.size,
    )
    assert restored.created_at == swept["created_at"]
    assert backend.read(orphan.file.name) == DRAFT and backend.read(swept["stray"]) == STRAY
    assert backend.modified(swept["stray"]) >= before - 1, (
        "a restored file is fresh: the grace period protects it"
    )
    assert backend.quarantined(swept["result"].run_id, swept["stray"]) is None


def test_a_restored_file_without_a_row_survives_the_next_sweep_within_the_grace_period(swept, backend):
    restore(swept["result"].run_id)

    result = run_cleanup(min_age="24h")

    assert backend.exists(swept["stray"])
    assert result.young_files == 2


def test_restore_never_overwrites_a_file_that_exists_again(swept, backend):
    backend.put(swept["stray"], b"a new upload at the same path")

    report, code = restore(swept["result"].run_id)

    assert code == 1 and report["status"] == "partial"
    assert {"kind": "file", "name": swept["stray"], "reason": "a file is there again; left as it is"} in (
        report["skipped_items"]
    )
    assert backend.read(swept["stray"]) == b"a new upload at the same path"
    assert backend.quarantined(swept["result"].run_id, swept["stray"]) == STRAY


def test_rows_whose_owner_is_still_gone_are_skipped(swept):
    report, code = restore(swept["result"].run_id)

    assert code == 1
    assert (report["restored_files"], report["restored_records"], report["skipped"]) == (2, 0, 1)
    assert "is still gone" in report["skipped_items"][0]["reason"]
    assert not Media.objects.filter(pk=swept["orphan"].pk).exists()


def test_a_dry_run_restore_changes_nothing(swept, backend):
    swept["owner"].save(force_insert=True)

    report, code = restore(swept["result"].run_id, "--dry-run")

    assert code == 0 and (report["restored_files"], report["restored_records"]) == (2, 1)
    assert not backend.exists(swept["stray"])
    assert not Media.objects.filter(pk=swept["orphan"].pk).exists()


def test_runs_past_retention_are_purged_by_the_next_sweep(swept, backend, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    run_id = swept["result"].run_id

    kept = run_cleanup(now=swept["clock"] + timedelta(days=6))
    purged = run_cleanup(now=swept["clock"] + timedelta(days=8))

    assert kept.purged_runs == 0
    assert (purged.purged_runs, purged.purged_bytes) == (1, len(DRAFT) + len(STRAY))
    assert purged.bytes_freed == purged.purged_bytes
    assert quarantine_keys(backend, run_id) == []
    report, code = restore(run_id)
    assert code == 2 and report["status"] == "purged" and "purged" in report["message"]


def test_purge_quarantine_purges_now(swept, backend):
    out = io.StringIO()
    call_command("cleanup_media", "--purge-quarantine", "--json", stdout=out)

    assert json.loads(out.getvalue())["purged_runs"] == 1
    assert quarantine_keys(backend, swept["result"].run_id) == []


def test_an_unknown_run_exits_2(media_root):
    report, code = restore("00000000-0000-0000-0000-000000000000")

    assert code == 2 and report["status"] == "unknown"


def test_restore_takes_the_sweeps_lock(swept, backend):
    with cleanup_lock("default"):
        result = restore_run(swept["result"].run_id)

    assert (result.status, result.exit_code) == ("locked", 75)
    assert not backend.exists(swept["stray"])


def test_list_shows_restorable_runs(swept):
    out = io.StringIO()

    call_command("restore_media", "--list", "--json", stdout=out)

    (run,) = json.loads(out.getvalue())
    assert (run["run_id"], run["files"], run["records"], run["bytes"]) == (
        swept["result"].run_id,
        2,
        1,
        len(DRAFT) + len(STRAY),
    )


def test_zero_days_deletes_at_once(backend, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0
    stray = backend.put("uploads/tours/stray.jpg")

    result = run_cleanup(now=later())

    assert (result.deleted_files, result.bytes_freed, result.quarantined_bytes) == (1, len(b"stray"), 0)
    assert not backend.exists(stray)
    assert quarantine_keys(backend, result.run_id) == []


def test_the_quarantine_is_never_listed_as_uploads(swept):
    result = run_cleanup(dry_run=True, force=True, min_age="0", now=swept["clock"])

    assert (result.files_checked, result.orphaned_files) == (1, 0), "only the live photo is listed"


def test_a_quarantine_inside_media_root_is_refused(media_root, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = str(media_root / "quarantine")
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")

    result = run_cleanup()

    assert result.status == "failed" and "inside MEDIA_ROOT" in result.message
    assert stray.exists()


@pytest.mark.parametrize("prefix", ["uploads/quarantine/", "uploads/", "/"])
def test_a_quarantine_prefix_under_uploads_is_refused_on_s3(s3_backend, settings, prefix):
    settings.MEDIA_CLEANUP_QUARANTINE_PREFIX = prefix
    stray = s3_backend.put("uploads/tours/stray.jpg")

    result = run_cleanup(now=later())

    assert result.status == "failed" and "outside uploads/" in result.message
    assert s3_backend.exists(stray)


def test_the_manifest_is_written_before_files_move(media_root, quarantine_root, monkeypatch):
    """A run killed in the middle of a move still describes what it touched."""

    class DyingQuarantine(FilesystemQuarantine):
        def move_in(self, run_id, files):
            manifest = list((quarantine_root / run_id).glob("manifest-*.jsonl"))
            assert manifest and "stray.jpg" in manifest[0].read_text()
            raise KeyboardInterrupt  # stands for SIGKILL at this point

    dying = dataclasses.replace(backend_for(), quarantine_class=DyingQuarantine)
    monkeypatch.setattr(engine, "backend_for", lambda storage: dying)
    stray = factories.stray_file(media_root, "uploads/tours/stray.jpg")

    with pytest.raises(KeyboardInterrupt):
        run_cleanup()

    assert stray.exists()


def test_dry_run_counts_quarantined_bytes_as_a_real_run_would(backend):
    factories.media(factories.tour())
    backend.put("uploads/tours/stray.jpg")

    dry = run_cleanup(dry_run=True, now=later())
    real = run_cleanup(now=later())

    assert dry.quarantined_bytes == real.quarantined_bytes == len(b"stray")


@pytest.mark.parametrize("how", ["shared-file-deleted-since", "restored-twice"])
def test_a_restore_never_creates_a_row_whose_file_is_gone(how, media_root):
    owner = factories.tour()
    orphan = factories.media(owner)
    if how == "shared-file-deleted-since":
        # The sweep keeps the file for the live row; that row and the file go later, normally.
        sharing = Media.objects.create(content_object=factories.guide(), file=orphan.file.name)
    factories.delete_behind_the_orms_back(owner)
    run_id = run_cleanup(min_age="0").run_id
    owner.save(force_insert=True)  # the owner comes back from a backup
    if how == "shared-file-deleted-since":
        sharing.delete()
    else:
        restore_run(run_id)
        Media.objects.get(pk=orphan.pk).delete()  # restored, then deleted by a user with its file

    result = restore_run(run_id)

    assert not Media.objects.filter(pk=orphan.pk).exists(), "a row must not come back without its file"
    assert result.status == "partial"
    assert any("its file is gone" in item["reason"] for item in result.skipped_items)


@pytest.fixture
def quarantine_on_another_filesystem(media_root, settings):
    """A quarantine on /dev/shm (a tmpfs): a move there is a copy then a delete, not a rename."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(media_root).st_dev:
        pytest.skip(f"{shm} is not a filesystem of its own here")
    root = tempfile.mkdtemp(dir=shm, prefix="quarantine-")
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = root
    yield Path(root)
    shutil.rmtree(root, ignore_errors=True)


def test_a_quarantine_on_another_filesystem_copies_then_deletes(media_root, quarantine_on_another_filesystem):
    owner = factories.tour()
    factories.media(factories.tour())
    orphan = factories.media(owner, name="draft.jpg", content=DRAFT)
    factories.delete_behind_the_orms_back(owner)
    stray = "uploads/guides/stray.jpg"
    factories.stray_file(media_root, stray, STRAY)

    result = run_cleanup(now=later())

    assert (result.status, result.deleted_records, result.deleted_files) == ("ok", 1, 2), result.message
    run_folder = quarantine_on_another_filesystem / result.run_id
    assert (run_folder / orphan.file.name).read_bytes() == DRAFT
    assert (run_folder / stray).read_bytes() == STRAY
    assert not (media_root / orphan.file.name).exists() and not (media_root / stray).exists()

    owner.save(force_insert=True)
    assert restore_run(result.run_id).status == "ok"
    assert (media_root / orphan.file.name).read_bytes() == DRAFT
    assert (media_root / stray).read_bytes() == STRAY
    assert Media.objects.filter(pk=orphan.pk).exists()


def test_a_restore_that_cannot_ask_the_storage_fails_and_creates_no_row(media_root, settings):
    owner = factories.tour()
    orphan = factories.media(owner)
    Media.objects.create(content_object=factories.guide(), file=orphan.file.name)  # kept: shared
    factories.delete_behind_the_orms_back(owner)
    run_id = run_cleanup(min_age="0").run_id
    owner.save(force_insert=True)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "tests.storages.FailingExistsStorage"}}

    result = restore_run(run_id)

    assert result.status == "failed" and "cannot tell whether" in result.message
    assert not Media.objects.filter(pk=orphan.pk).exists()


# -- what the quarantine holds is hostile input -------------------------------------------------


def put_quarantined(backend, path, content):
    """Write ``content`` at ``path`` under the quarantine, behind the product's back."""
    if backend.name == "s3":
        backend.client.put_object(Bucket=backend.bucket, Key=f"quarantine/{path}", Body=content)
        return f"s3://{backend.bucket}/quarantine/{path}"
    target = backend.quarantine / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return str(target)


def read_quarantined(backend, path):
    """Return the bytes at ``path`` under the quarantine."""
    if backend.name == "s3":
        return backend.client.get_object(Bucket=backend.bucket, Key=f"quarantine/{path}")["Body"].read()
    return (backend.quarantine / path).read_bytes()


# For tests of what only local files have (symlinks, folders): the ``swept`` fixture on local files.
on_local_files = pytest.mark.parametrize("backend", ["filesystem"], indirect=True)
on_s3 = pytest.mark.parametrize("backend", ["s3"], indirect=True)


def file_line(name):
    return json.dumps({"kind": "file", "name": name}).encode()


def test_a_restore_never_moves_a_file_through_a_symlinked_folder_of_the_quarantine(
    media_root, quarantine_root, outside_dir
):
    (outside_dir / "x").write_bytes(b"not the product's")
    link = media_root / "uploads/tours/evil"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside_dir)
    run_id = run_cleanup(now=later()).run_id
    assert (quarantine_root / run_id / "uploads/tours/evil").is_symlink(), "the link was quarantined"
    # A forged manifest part, read before the real one: the file "under" the quarantined link.
    (quarantine_root / run_id / "manifest-00000.jsonl").write_bytes(file_line("uploads/tours/evil/x") + b"\n")
    before = tree(outside_dir)

    result = restore_run(run_id)

    assert tree(outside_dir) == before
    assert os.readlink(link) == str(outside_dir), "the link itself comes back, as a link"
    assert (result.status, result.restored_files, result.skipped) == ("partial", 1, 1)
    assert result.skipped_items == [
        {
            "kind": "file",
            "name": "uploads/tours/evil/x",
            "reason": "refused: a folder above it in the quarantine is a symlink",
        }
    ]


@on_local_files
def test_a_restore_moves_back_files_and_links_never_a_folder(swept, media_root, quarantine_root):
    run_id = swept["result"].run_id
    (media_root / "uploads/guides").rmdir()  # the stray file's folder, empty since the sweep
    (quarantine_root / run_id / "manifest-00000.jsonl").write_bytes(file_line("uploads/guides") + b"\n")

    result = restore_run(run_id)

    assert {
        "kind": "file",
        "name": "uploads/guides",
        "reason": "refused: not a file or a link in the quarantine",
    } in (result.skipped_items)
    assert result.restored_files == 2, "the file in that folder came back on its own line"
    assert (media_root / swept["stray"]).read_bytes() == STRAY


BAD_LINES = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"[" * 100_000, "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b'{"kind": "file"}', '"name" is not a plain name under uploads/: None'),
    (b'{"kind": "file", "name": 7}', '"name" is not a plain name under uploads/: 7'),
    (file_line("uploads/../../etc/passwd"), '"name" is not a plain name under uploads/'),
    (file_line("/etc/passwd"), '"name" is not a plain name under uploads/'),
    (file_line("static/site.css"), '"name" is not a plain name under uploads/'),
    (b'{"kind": "photo", "name": "uploads/x.jpg"}', '"kind" is neither "file" nor "record"'),
    (b'{"name": "uploads/x.jpg"}', '"kind" is neither "file" nor "record"'),
]


def record_line(**changes):
    """Return a well-formed manifest line of a deleted row, with ``changes`` (None removes a key)."""
    entry = {
        "kind": "record",
        "id": "8d7f2a4c-1111-4e2b-9c3d-5a6b7c8d9e0f",
        "content_type": ["tours", "tour"],
        "object_id": "8d7f2a4c-2222-4e2b-9c3d-5a6b7c8d9e0f",
        "file": "uploads/tours/a.jpg",
        "original_name": "a.jpg",
        "size": 5,
        "mime_type": "image/jpeg",
        "caption": "",
        "created_at": "2026-01-02T03:04:05+00:00",
    }
    entry.update(changes)
    return json.dumps({key: value for key, value in entry.items() if value is not None}).encode()


BAD_RECORDS = [
    (record_line(id="row-1"), '"id" is not a UUID'),
    (record_line(id=None), '"id" is not a UUID'),
    (record_line(object_id=12), '"object_id" is not a UUID'),
    (record_line(content_type="tours.tour"), '"content_type" is not [app label, model]'),
    (record_line(content_type=["tours"]), '"content_type" is not [app label, model]'),
    (record_line(file=None), '"file" is not a text of at most 255 characters'),
    (record_line(caption="x" * 256), '"caption" is not a text of at most 255 characters'),
    (record_line(original_name="a\x00.jpg"), '"original_name" is not a text'),
    (record_line(mime_type=["image/jpeg"]), '"mime_type" is not a text of at most 100 characters'),
    (record_line(size="5"), '"size" is not a number of bytes'),
    (record_line(size=-1), '"size" is not a number of bytes'),
    (record_line(size=True), '"size" is not a number of bytes'),
    (record_line(size=2**63), '"size" is not a number of bytes'),
    (record_line(created_at="yesterday"), '"created_at" is not an ISO date and time with an offset'),
    (
        record_line(created_at="2026-01-02T03:04:05"),
        '"created_at" is not an ISO date and time with an offset',
    ),
]


def test_malformed_manifest_lines_are_skipped_with_their_place_and_the_rest_is_restored(swept, backend):
    swept["owner"].save(force_insert=True)
    run_id = swept["result"].run_id
    bad = BAD_LINES + BAD_RECORDS
    put_quarantined(backend, f"{run_id}/manifest-00000.jsonl", b"\n".join(line for line, _ in bad) + b"\n\n")

    report, code = restore(run_id)

    assert (code, report["status"]) == (1, "partial")
    assert (report["restored_files"], report["restored_records"], report["skipped"]) == (2, 1, len(bad))
    for number, (item, (_, reason)) in enumerate(zip(report["skipped_items"], bad, strict=True), start=1):
        assert (item["kind"], item["name"]) == ("manifest", f"manifest-00000.jsonl line {number}")
        assert item["reason"].startswith("malformed manifest line: ") and reason in item["reason"], item
    assert backend.read(swept["stray"]) == STRAY


def test_list_counts_only_the_entries_a_restore_would_try(swept, backend):
    run_id = swept["result"].run_id
    put_quarantined(backend, f"{run_id}/manifest-00000.jsonl", b"not json\n" + record_line(size="5") + b"\n")
    out = io.StringIO()

    call_command("restore_media", "--list", "--json", stdout=out)

    (run,) = json.loads(out.getvalue())
    assert (run["files"], run["records"]) == (2, 1)


@on_local_files
def test_a_manifest_part_that_is_not_a_regular_file_is_skipped_and_never_followed(
    swept, quarantine_root, outside_dir
):
    run_id = swept["result"].run_id
    (outside_dir / "forged.jsonl").write_bytes(file_line("uploads/guides/stray.jpg") + b"\n")
    (quarantine_root / run_id / "manifest-00000.jsonl").symlink_to(outside_dir / "forged.jsonl")
    (quarantine_root / run_id / "manifest-00009.jsonl").mkdir()

    result = restore_run(run_id)

    assert [(item["name"], item["reason"]) for item in result.skipped_items[:2]] == [
        ("manifest-00000.jsonl", "manifest part cannot be read (a symlink, never followed)"),
        ("manifest-00009.jsonl", "manifest part cannot be read (not a regular file)"),
    ]
    assert result.restored_files == 2


def test_a_row_listed_twice_comes_back_once(swept, backend):
    swept["owner"].save(force_insert=True)
    run_id = swept["result"].run_id
    record = next(
        line
        for line in backend.quarantined(run_id, "manifest-00001.jsonl").splitlines()
        if b'"record"' in line
    )
    put_quarantined(backend, f"{run_id}/manifest-00099.jsonl", record + b"\n")

    result = restore_run(run_id)

    assert (result.restored_records, result.skipped) == (1, 1), result.skipped_items
    assert result.skipped_items[0]["reason"] == "the manifest lists this row twice"
    assert Media.objects.filter(pk=swept["orphan"].pk).count() == 1


def test_a_row_of_an_owner_type_without_a_uuid_key_is_skipped(swept, backend):
    run_id = swept["result"].run_id
    forged = record_line(content_type=["auth", "group"], id=str(uuid.uuid4()))
    put_quarantined(backend, f"{run_id}/manifest-00000.jsonl", forged + b"\n")

    result = restore_run(run_id)

    assert result.status == "partial"
    assert "its owner (auth.group 8d7f2a4c-2222-4e2b-9c3d-5a6b7c8d9e0f) is still gone" in [
        item["reason"] for item in result.skipped_items
    ]


def test_line_separators_inside_a_caption_survive_the_manifest(backend):
    owner = factories.tour()
    factories.media(factories.tour())
    orphan = factories.media(owner)
    Media.objects.filter(pk=orphan.pk).update(caption="Narikala\u2028at night\x85")
    factories.delete_behind_the_orms_back(owner)
    run_id = run_cleanup(now=later()).run_id
    owner.save(force_insert=True)

    result = restore_run(run_id)

    assert result.status == "ok", result.skipped_items or result.message
    assert Media.objects.get(pk=orphan.pk).caption == "Narikala\u2028at night\x85"


BAD_META = [
    (b"not json", "is not valid JSON"),
    (b"\xff\xfe", "is not valid JSON"),
    (b"[]", "is not a JSON object"),
    (b'{"run_id": "x"}', 'has no "created" time'),
    (b'{"created": "yesterday"}', 'has no "created" time'),
    (b'{"created": 1e400}', 'has no "created" time'),
    (b'{"created": true}', 'has no "created" time'),
]


@pytest.mark.parametrize(("content", "reason"), BAD_META)
def test_a_corrupt_meta_json_is_one_error_of_every_sweep_and_never_purged(swept, backend, content, reason):
    bad = str(uuid.uuid4())
    path = put_quarantined(backend, f"{bad}/meta.json", content)
    put_quarantined(backend, f"{bad}/uploads/tours/kept.jpg", b"kept")

    result = run_cleanup(now=swept["clock"] + timedelta(days=30), purge_quarantine=True)

    assert (result.status, result.purged_runs, result.error_count) == ("errors", 1, 1), result.message
    (error,) = result.errors
    assert error.startswith(f"quarantine: {path}: {reason}") and error.endswith(
        "repair it, or remove its run folder"
    )
    assert read_quarantined(backend, f"{bad}/uploads/tours/kept.jpg") == b"kept", "never purged"
    assert quarantine_keys(backend, swept["result"].run_id) == [], "the readable run went as usual"


def test_a_restore_of_a_run_whose_meta_json_is_corrupt_fails_in_one_line(swept, backend):
    run_id = swept["result"].run_id
    path = put_quarantined(backend, f"{run_id}/meta.json", b"{")

    report, code = restore(run_id)

    assert (code, report["status"]) == (1, "failed")
    assert report["message"].startswith(
        f"the quarantine of run {run_id} cannot be read: {path}: is not valid JSON"
    )
    assert "\n" not in report["message"]
    assert not backend.exists(swept["stray"])


NOT_RUNS = [
    ("notes.txt", "notes.txt", "not a run folder"),
    ("old-runs/meta.json", "old-runs/", "not a run folder"),
    (
        "0b7c2d0e-0000-4000-8000-000000000000/manifest-00001.jsonl",
        "0b7c2d0e-0000-4000-8000-000000000000/",
        "a run folder without meta.json",
    ),
]


@pytest.mark.parametrize(("written", "entry", "reason"), NOT_RUNS)
def test_what_is_not_a_run_is_one_error_of_every_sweep(swept, backend, written, entry, reason):
    put_quarantined(backend, written, b"{}")

    result = run_cleanup(now=swept["clock"], purge_quarantine=True)

    assert (result.status, result.purged_runs, result.error_count) == ("errors", 1, 1)
    (error,) = result.errors
    if backend.name == "s3":
        shown = f"s3://{backend.bucket}/quarantine/{entry}"
    else:
        shown = str(backend.quarantine / entry)
    assert error.startswith(f"quarantine: {shown}: {reason}") and "remove it" in error, error
    assert read_quarantined(backend, written) == b"{}", "never purged"


def test_a_restore_of_a_run_folder_without_meta_json_fails(swept, backend):
    run_id = swept["result"].run_id
    if backend.name == "s3":
        backend.client.delete_object(Bucket=backend.bucket, Key=f"quarantine/{run_id}/meta.json")
    else:
        (backend.quarantine / run_id / "meta.json").unlink()

    result = restore_run(run_id)

    assert result.status == "failed" and "a run folder without meta.json" in result.message
    assert not backend.exists(swept["stray"])


@on_local_files
@pytest.mark.parametrize("kind", ["symlink", "folder"])
def test_a_meta_json_that_is_not_a_regular_file_is_never_read(swept, quarantine_root, outside_dir, kind):
    meta = quarantine_root / swept["result"].run_id / "meta.json"
    meta.unlink()
    if kind == "symlink":
        (outside_dir / "meta.json").write_text('{"created": 0}')
        meta.symlink_to(outside_dir / "meta.json")
    else:
        meta.mkdir()

    result = run_cleanup(now=swept["clock"], purge_quarantine=True)

    assert (result.status, result.purged_runs) == ("errors", 0)
    reason = "a symlink, never followed" if kind == "symlink" else "not a regular file"
    assert result.errors == [
        f"quarantine: {meta}: cannot be read ({reason}); repair it, or remove its run folder"
    ]


def test_a_name_that_is_not_utf8_is_reported_readably(media_root, quarantine_root):
    quarantine_root.mkdir()
    os.close(os.open(os.fsencode(quarantine_root) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY))

    result = run_cleanup()

    assert result.errors == [f"quarantine: {quarantine_root}/caf\\xe9.txt: {NOT_A_RUN}"]
    assert CleanupRun.objects.get(pk=result.run_id).errors == result.errors


def test_lost_and_found_is_no_stray_folder(media_root, quarantine_root):
    (quarantine_root / "lost+found").mkdir(parents=True)

    assert run_cleanup().status == "ok"


def test_begin_keeps_extra_meta_keys_for_runs_to_return(backend):
    quarantine = backend_for().quarantine()
    run_id = str(uuid.uuid4())
    now = timezone.now()

    quarantine.begin(run_id, now, database="tbilisi-tours")

    runs, problems = quarantine.runs()
    assert problems == []
    assert runs[run_id].created == now.timestamp()
    assert runs[run_id].meta == {"run_id": run_id, "created": now.timestamp(), "database": "tbilisi-tours"}
    assert quarantine.run(run_id) == runs[run_id]


def test_an_unknown_run_id_is_no_run_on_both_backends(backend):
    assert backend_for().quarantine().run(str(uuid.uuid4())) is None


def test_restore_run_given_no_run_id_says_unknown():
    result = restore_run("not-a-uuid")

    assert (result.status, result.exit_code) == ("unknown", 2)
    assert "'not-a-uuid' is not a run id" in result.message


def test_a_run_id_is_read_in_any_case(swept, backend):
    assert restore_run(swept["result"].run_id.upper()).restored_files == 2


@on_s3
def test_a_meta_json_the_bucket_refuses_to_give_is_one_error(swept, backend):
    run_id = swept["result"].run_id
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{backend.bucket}/quarantine/{run_id}/meta.json",
    }
    backend.client.put_bucket_policy(
        Bucket=backend.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )

    result = run_cleanup(now=swept["clock"], purge_quarantine=True)

    assert (result.status, result.purged_runs) == ("errors", 0)
    (error,) = result.errors
    assert error.startswith(
        f"quarantine: s3://{backend.bucket}/quarantine/{run_id}/meta.json: cannot be read ("
    )
    assert "GetObject" in error and error.endswith("; repair it, or remove its run folder")


def test_a_folder_marker_of_the_prefix_is_no_stray_key_on_s3(s3_backend):
    s3_backend.client.put_object(Bucket=s3_backend.bucket, Key="quarantine/", Body=b"")

    assert run_cleanup(now=later()).status == "ok"


@contextmanager
def undeletable(backend, path):
    """Make the quarantined file at ``path`` one that not even root can delete, for the block."""
    if backend.name == "s3":
        with backend.deletes_failing(resource=f"quarantine/{path}"):
            yield
        return
    target = backend.quarantine / path
    subprocess.run(["chattr", "+i", str(target)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)


def test_a_run_that_cannot_be_purged_is_one_error_and_purged_by_a_later_sweep(swept, backend):
    run_id = swept["result"].run_id

    with undeletable(backend, f"{run_id}/{swept['stray']}"):
        failed = run_cleanup(now=swept["clock"] + timedelta(days=30), purge_quarantine=True)

    assert (failed.status, failed.purged_runs, failed.error_count) == ("errors", 0, 1), failed.message
    assert failed.errors[0].startswith(f"quarantine: cannot purge run {run_id}: ")
    runs, problems = backend_for().quarantine().runs()
    assert run_id in runs and problems == [], "its meta.json goes last: the run is still listed"
    later_sweep = run_cleanup(now=swept["clock"] + timedelta(days=30), purge_quarantine=True)
    assert (later_sweep.status, later_sweep.purged_runs) == ("ok", 1)


# -- quarantine_bytes: what the quarantine holds at a run's end ----------------------------------


def quarantine_content(backend):
    """Return the bytes of the files the quarantine holds as the storage tells them (manifests aside)."""
    if backend.name == "s3":
        pages = backend.client.get_paginator("list_objects_v2").paginate(
            Bucket=backend.bucket, Prefix="quarantine/"
        )
        entries = [(entry["Key"], entry["Size"]) for page in pages for entry in page.get("Contents", ())]
    else:
        entries = [
            (os.path.join(folder, name), os.lstat(os.path.join(folder, name)).st_size)
            for folder, _, names in os.walk(backend.quarantine)
            for name in names
        ]
    return sum(size for path, size in entries if "/uploads/" in path)


def recorded_quarantine_bytes(result):
    return CleanupRun.objects.get(pk=result.run_id).quarantine_bytes


def test_each_run_records_what_the_quarantine_holds_at_its_end(swept, backend, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 7
    first = len(DRAFT) + len(STRAY)
    assert recorded_quarantine_bytes(swept["result"]) == first == quarantine_content(backend)

    backend.put("uploads/drivers/second.jpg", b"s" * 40)
    second = run_cleanup(now=swept["clock"] + timedelta(days=6))
    assert recorded_quarantine_bytes(second) == first + 40 == quarantine_content(backend)

    dry = run_cleanup(now=swept["clock"] + timedelta(days=8), dry_run=True)
    assert quarantine_content(backend) == first + 40, "a dry run purges nothing"
    real = run_cleanup(now=swept["clock"] + timedelta(days=8))
    assert real.purged_runs == 1
    assert recorded_quarantine_bytes(real) == 40 == quarantine_content(backend)
    assert recorded_quarantine_bytes(dry) == 40, "a dry run tells what a real run would leave"


def test_what_a_restore_took_back_is_no_longer_counted(swept, backend):
    restore(swept["result"].run_id)  # its files come back; the row stays gone, its owner being gone

    after = run_cleanup()  # the restored files are young: they stay where they are

    assert CleanupRun.objects.get(pk=swept["result"].run_id).quarantined_bytes == len(DRAFT) + len(STRAY)
    assert recorded_quarantine_bytes(after) == 0 == quarantine_content(backend)


def test_what_a_failed_purge_left_is_still_counted(swept, backend):
    run_id = swept["result"].run_id

    with undeletable(backend, f"{run_id}/{swept['stray']}"):
        failed = run_cleanup(now=swept["clock"] + timedelta(days=30), purge_quarantine=True)

    assert failed.status == "errors"
    assert recorded_quarantine_bytes(failed) == quarantine_content(backend) >= len(STRAY)


# -- size.json: a run's bytes, recorded when it ends ---------------------------------------------


def test_a_kept_run_is_measured_when_it_ends_never_again(swept, backend):
    run_id = swept["result"].run_id
    assert json.loads(read_quarantined(backend, f"{run_id}/size.json")) == {"bytes": len(DRAFT) + len(STRAY)}
    # A file added behind the quarantine's back shows that later sweeps read the record.
    put_quarantined(backend, f"{run_id}/uploads/guides/added.jpg", b"a" * 1000)

    later_sweep = run_cleanup(now=swept["clock"])

    assert recorded_quarantine_bytes(later_sweep) == len(DRAFT) + len(STRAY)


@pytest.mark.parametrize(
    "content", [None, b"", b"not json", b"[]", b'{"bytes": -1}', b'{"bytes": true}', b'{"bytes": "17"}']
)
def test_without_a_readable_size_record_a_kept_run_is_measured(swept, backend, content, caplog):
    run_id = swept["result"].run_id
    put_quarantined(backend, f"{run_id}/uploads/guides/added.jpg", b"a" * 1000)
    if content is None:
        remove_quarantined(backend, f"{run_id}/size.json")  # as a run killed before its end leaves it
    else:
        put_quarantined(backend, f"{run_id}/size.json", content)

    later_sweep = run_cleanup(now=swept["clock"])

    assert later_sweep.status == "ok", later_sweep.message
    assert (
        recorded_quarantine_bytes(later_sweep)
        == len(DRAFT) + len(STRAY) + 1000
        == quarantine_content(backend)
    )
    warned = [r.getMessage() for r in caplog.records if "size.json" in r.getMessage()]
    assert len(warned) == (content is not None), warned


def test_a_restore_drops_the_size_record_before_it_moves_anything_back(swept, backend):
    run_id = swept["result"].run_id

    preview, _ = restore(run_id, "--dry-run")
    assert preview["status"] == "partial"  # the row's owner is still gone
    assert read_quarantined(backend, f"{run_id}/size.json"), "a dry run changes nothing"
    with undeletable(backend, f"{run_id}/size.json"):
        refused = restore_run(run_id)
    assert refused.status == "failed" and "size.json" in refused.message, refused.message
    assert quarantine_content(backend) == len(DRAFT) + len(STRAY), "nothing moved back"

    assert restore_run(run_id).restored_files == 2
    assert not quarantine_has(backend, f"{run_id}/size.json")


def remove_quarantined(backend, path):
    if backend.name == "s3":
        backend.client.delete_object(Bucket=backend.bucket, Key=f"quarantine/{path}")
    else:
        (backend.quarantine / path).unlink()


def quarantine_has(backend, path):
    if backend.name == "s3":
        listed = backend.client.list_objects_v2(Bucket=backend.bucket, Prefix=f"quarantine/{path}")
        return bool(listed.get("Contents"))
    return (backend.quarantine / path).exists()


@on_local_files
def test_a_size_record_that_is_a_symlink_is_never_followed(swept, quarantine_root, outside_dir, caplog):
    run_id = swept["result"].run_id
    forged = outside_dir / "size.json"
    forged.write_text('{"bytes": 1}')
    record = quarantine_root / run_id / "size.json"
    record.unlink()
    record.symlink_to(forged)

    later_sweep = run_cleanup(now=swept["clock"])

    assert recorded_quarantine_bytes(later_sweep) == len(DRAFT) + len(STRAY)
    assert any(
        "size.json cannot be read (a symlink, never followed)" in r.getMessage() for r in caplog.records
    )
