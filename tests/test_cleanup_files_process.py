"""The orphaned files removed in a forked process beside the orphaned rows (PostgreSQL, local files)."""

import json
import logging
import os
import time
from datetime import timedelta

import pytest
from django.db import connection

from media_app.cleanup import files_process, removal
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.lock import LockLost, cleanup_lock
from media_app.cleanup.result import Item
from media_app.models import Media
from tests import factories
from tests.backends import later

pytestmark = pytest.mark.django_db(transaction=True)

STRAYS = [f"uploads/guides/stray-{number}.jpg" for number in range(7)] + ["uploads/tours/სურათი-Фото.jpg"]


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: on SQLite the files go after the rows, in the sweep's own process")


@pytest.fixture
def orphans(media_root, quarantine_root, monkeypatch):
    """Three orphaned rows with their files, eight stray files, live media; batches of two."""
    monkeypatch.setattr(removal, "PAGE_SIZE", 2)
    for _ in range(3):
        factories.media(factories.tour())  # live: the cap sees a normal library
    owner = factories.tour()
    rows = [factories.media(owner, name=f"draft-{number}.jpg") for number in range(3)]
    factories.delete_behind_the_orms_back(owner)
    for name in STRAYS:
        factories.stray_file(media_root, name)
    return {"rows": rows, "row_files": [row.file.name for row in rows], "strays": STRAYS}


def sweep(**options):
    items = []
    result = run_cleanup(
        now=later(), force=True, on_item=lambda kind, name: items.append((kind, name)), **options
    )
    return result, items


def manifest(quarantine_root, run_id):
    """Return {part number: entries} of a run's manifest."""
    folder = quarantine_root / run_id
    return {
        int(part.stem.split("-")[1]): [json.loads(line) for line in part.read_text().splitlines()]
        for part in folder.glob("manifest-*.jsonl")
    }


@pytest.fixture
def forks(monkeypatch):
    """The pids of the files processes the sweep forks (each still forks)."""
    pids = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(files_process.os, "fork", fork)
    return pids


def assert_forked_once_and_reaped(forks):
    (pid,) = forks
    with pytest.raises(ChildProcessError):  # waited for already: no zombie left
        os.waitpid(pid, os.WNOHANG)


def test_the_stray_files_go_in_a_process_of_their_own_counted_as_in_one(
    orphans, media_root, quarantine_root, forks
):
    result, items = sweep(files_process=True)

    assert result.status == "ok", result.message
    assert (result.deleted_records, result.deleted_files) == (3, 11)
    assert result.quarantined_bytes == 3 * len(b"not really a jpeg") + 8 * len(b"stray")
    assert not any((media_root / name).exists() for name in orphans["strays"] + orphans["row_files"])
    assert {name for kind, name in items if kind == Item.QUARANTINED_FILE} == set(
        orphans["strays"] + orphans["row_files"]
    )
    parts = manifest(quarantine_root, result.run_id)
    # The child numbers its parts 2, 4, 6...: they hold the stray files and nothing else.
    assert {entry["name"] for number, part in parts.items() if number % 2 == 0 for entry in part} == set(
        orphans["strays"]
    )
    assert {entry["kind"] for number, part in parts.items() if number % 2 for entry in part} == {
        "record",
        "file",
    }
    assert json.loads((quarantine_root / result.run_id / "size.json").read_text()) == {
        "bytes": result.quarantined_bytes
    }
    assert_forked_once_and_reaped(forks)


def test_in_one_process_the_figures_are_the_same(orphans, quarantine_root):
    result, _ = sweep(files_process=False)

    assert (result.deleted_records, result.deleted_files) == (3, 11)
    assert all(number <= 11 for number in manifest(quarantine_root, result.run_id))  # 1, 2, 3...


def test_a_lost_lock_stops_both_processes_before_any_batch(orphans, media_root, monkeypatch, forks):
    prepare = removal.Removal.prepare_for_files_process

    def lose_the_lock_then_fork(self):
        prepare(self)
        pid = self.lock.session.connection.info.backend_pid
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(500):  # it goes asynchronously: wait until pg_locks no longer shows it
                cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s", [pid])
                if not cursor.fetchone()[0]:
                    break
                time.sleep(0.01)

    monkeypatch.setattr(removal.Removal, "prepare_for_files_process", lose_the_lock_then_fork)

    result, _ = sweep(files_process=True)

    assert result.status == "failed"
    assert "LockLost" in result.message
    assert result.deleted_files == 0 and result.deleted_records == 0
    assert all((media_root / name).exists() for name in orphans["strays"] + orphans["row_files"])
    assert_forked_once_and_reaped(forks)


def test_the_parent_failing_stops_the_child_and_counts_what_it_did(orphans, media_root, monkeypatch, forks):
    def fail(self, pks):
        raise files_process.DatabaseError("the database went away")

    monkeypatch.setattr(removal.Removal, "delete_records", fail)

    result, items = sweep(files_process=True)

    assert result.status == "failed" and "the database went away" in result.message
    moved = {name for kind, name in items if kind == Item.QUARANTINED_FILE}
    assert moved <= set(orphans["strays"])
    assert result.deleted_files == len(moved)
    assert {name for name in orphans["strays"] if not (media_root / name).exists()} == moved
    assert_forked_once_and_reaped(forks)


def test_an_unexpected_error_in_the_child_fails_the_run_in_one_line(orphans, monkeypatch, forks):
    def boom(self, spill):
        raise ValueError("boom")

    monkeypatch.setattr(removal.Removal, "remove_orphaned_files", boom)  # only the child calls it

    result, _ = sweep(files_process=True)

    assert result.status == "failed"
    assert result.message == "unexpected error: RuntimeError: ValueError: boom"
    assert result.deleted_records == 3  # the parent's batches went
    assert_forked_once_and_reaped(forks)


def test_a_child_that_ends_without_a_report_fails_the_run(orphans, monkeypatch, forks, quarantine_root):
    def leave(self, spill):
        raise SystemExit(3)

    monkeypatch.setattr(removal.Removal, "remove_orphaned_files", leave)

    result, _ = sweep(files_process=True)

    assert result.status == "failed"
    assert "ended without a report (exit status 1)" in result.message
    # What the child moved is unknown: the run records no size, so later sweeps measure it.
    assert not (quarantine_root / result.run_id / "size.json").exists()
    assert_forked_once_and_reaped(forks)


def test_the_child_checks_its_parent_and_the_lock_session():
    with cleanup_lock("default") as held:
        pid = held.session_pid()
        read_end, write_end = os.pipe()
        try:
            files_process.ChildLock(read_end, pid, "default").check()  # held, parent there: go on
            with pytest.raises(LockLost):
                files_process.ChildLock(read_end, pid + 100_000, "default").check()  # not the holder
            os.close(write_end)
            write_end = None
            with pytest.raises(LockLost, match="stopped"):
                files_process.ChildLock(read_end, pid, "default").check()
        finally:
            os.close(read_end)
            if write_end is not None:
                os.close(write_end)


@pytest.mark.parametrize(
    "options",
    [
        {"files_process": False},
        {"files_process": True, "dry_run": True},
        {"files_process": True, "rate": 1000},
    ],
)
def test_not_for_dry_runs_a_rate_or_a_caller_that_did_not_ask(orphans, forks, options):
    result, _ = sweep(**options)

    assert result.status == "ok", result.message
    assert result.deleted_files == 11
    assert forks == []


def test_when_the_system_cannot_fork_the_files_go_after_the_rows(orphans, monkeypatch, quarantine_root):
    def cannot(*args):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(files_process.os, "fork", cannot)

    result, _ = sweep(files_process=True)

    assert result.status == "ok", result.message
    assert (result.deleted_records, result.deleted_files) == (3, 11)
    assert json.loads((quarantine_root / result.run_id / "size.json").read_text()) == {
        "bytes": result.quarantined_bytes
    }


def test_the_child_s_log_records_reach_the_sweep_s_handlers(orphans, forks, caplog):
    caplog.set_level(logging.INFO, logger="media_app")

    result, _ = sweep(files_process=True)

    assert result.status == "ok", result.message
    removed = [
        r for r in caplog.records if r.name == "media_app.cleanup.removal" and r.msg.startswith("Removed")
    ]
    by_process = {}
    for record in removed:
        by_process.setdefault(record.process, set()).add(record.args[0])
    (child,) = forks
    assert by_process == {os.getpid(): set(orphans["row_files"]), child: set(orphans["strays"])}


def test_a_stray_referenced_again_before_its_batch_goes_is_kept_by_the_child(
    orphans, media_root, monkeypatch
):
    prepare = removal.Removal.prepare_for_files_process
    revived = orphans["strays"][0]

    def reference_a_stray_then_fork(self):
        prepare(self)
        Media.objects.create(content_object=factories.tour(), file=revived)  # after the collect

    monkeypatch.setattr(removal.Removal, "prepare_for_files_process", reference_a_stray_then_fork)

    result, _ = sweep(files_process=True)

    assert result.status == "ok", result.message
    assert result.deleted_files == 10
    assert (media_root / revived).exists()


def test_the_child_keeps_to_the_time_limit(orphans, media_root, forks):
    result, _ = sweep(files_process=True, time_limit=timedelta(0))

    assert result.status == "partial"
    assert result.deleted_files == 0
    assert all((media_root / name).exists() for name in orphans["strays"])
    assert_forked_once_and_reaped(forks)
