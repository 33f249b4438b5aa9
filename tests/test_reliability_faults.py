"""Faults the sweep must survive, on PostgreSQL and tens of thousands of files.

Each test builds an estate of 20,000 two-day-old files: 12,000 in use, 4,000 of media rows
whose owner was deleted behind the ORM's back, and 4,000 strays that nothing references. The
sweeps run as real ``manage.py cleanup_media`` processes; ``tests/settings_faults.py`` gives
them a storage that stalls at a chosen file (so that a test kills the process, or terminates
its database connection, at a known point) or refuses some deletes. Whatever the fault, no
file in use is lost, and a later run converges: ``uploads/`` then holds exactly the files in
use, and the database exactly their rows.

The command removes the strays in a files process of its own (``files_process.py``) while it
removes the orphaned rows: a test that stalls one waits for the other to be done before the
fault, so that the fault lands where it is aimed.
"""

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.lock import ADVISORY_LOCK_KEY
from media_app.cleanup.removal import PAGE_SIZE
from media_app.models import CleanupRun, Media
from tests import factories
from tests.conftest import child_environment

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL only: these faults need its advisory lock and pg_terminate_backend",
    ),
]

LIVE, ORPHANED, STRAYS = 12_000, 4_000, 4_000
FOLDERS = 40  # each kind of file is spread over this many folders
GRACE = "1h"
MIDWAY = 2_500  # the stall point: this many files of a kind go before it
# Where a sweep stalled at MIDWAY has got to once its batch is done.
BATCH_END = (MIDWAY // PAGE_SIZE + 1) * PAGE_SIZE
# While a batch of files is carried out, the sweep checks the next one (on local files, one
# batch at a time is carried out, in order): a sweep stalled a batch before MIDWAY's has checked
# the batch that ends at BATCH_END, which goes too once the stall ends.
ONE_BATCH_EARLIER = MIDWAY - PAGE_SIZE
REFUSED_FOLDER = "07"  # the folder whose files a disk refuses to give up
RACE_SECONDS = 30
UPLOADERS = 2
STEP_TIMEOUT = 120  # seconds a side of the race waits for the other, at most


@dataclass
class Estate:
    """The names of the estate's files, each list in the order the sweep meets them."""

    live: list
    orphaned: list
    strays: list


@pytest.fixture
def estate(media_root):
    """Write 20,000 two-day-old files; 12,000 in use, 4,000 of orphaned rows, 4,000 strays."""
    two_days_ago = time.time() - 2 * 86400

    def write(kind, folder, count):
        names = sorted(f"uploads/{folder}/{n % FOLDERS:02d}/{kind}-{n:05d}.jpg" for n in range(count))
        for name in names:
            path = media_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(name.encode())
            os.utime(path, (two_days_ago, two_days_ago))
        return names

    estate = Estate(
        write("live", "tours", LIVE), write("orphan", "guides", ORPHANED), write("stray", "archive", STRAYS)
    )
    owners = [factories.tour() for _ in range(8)]
    doomed = [factories.guide() for _ in range(4)]
    rows = [Media(content_object=owners[n % 8], file=name) for n, name in enumerate(estate.live)]
    rows += [Media(content_object=doomed[n % 4], file=name) for n, name in enumerate(estate.orphaned)]
    Media.objects.bulk_create(rows, batch_size=2000)
    for owner in doomed:
        factories.delete_behind_the_orms_back(owner)
    return estate


class SweepProcess:
    """A real ``manage.py cleanup_media --json`` whose storage stalls at ``stall_at``, as a test directs."""

    def __init__(self, settings, *args, stall_at, env=None):
        self.run_id = str(uuid.uuid4())
        self.application_name = f"cleanup-{self.run_id[:8]}"
        self.stalled, stall_ready = os.pipe()
        stall_release, self.release_fd = os.pipe()
        environment = child_environment(
            settings,
            {
                "DJANGO_SETTINGS_MODULE": "tests.settings_faults",
                "MEDIA_TEST_STALL_AT": stall_at,
                "MEDIA_TEST_STALL_FDS": f"{stall_ready},{stall_release}",
                "MEDIA_TEST_APPLICATION_NAME": self.application_name,
                **(env or {}),
            },
        )
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "cleanup_media", "--json", "--run-id", self.run_id, *args],
            cwd=settings.BASE_DIR,
            env=environment,
            pass_fds=(stall_ready, stall_release),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(stall_ready)
        os.close(stall_release)

    def wait_until_stalled(self, timeout=600):
        readable, _, _ = select.select([self.stalled], [], [], timeout)
        if not (readable and os.read(self.stalled, 1000).startswith(b"stalled")):
            self.process.kill()
            pytest.fail(f"the sweep never reached its stall point: {self.finish()}")

    def release(self):
        os.write(self.release_fd, b"go")

    def finish(self, timeout=600):
        """Wait for the process to end; return ``(exit code, stdout, stderr)``."""
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err

    def close(self):
        """Kill the process if it still runs (a test failed while it stalled), and close the pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.stalled)
        os.close(self.release_fd)


@pytest.fixture
def start_sweep(settings):
    """Start ``SweepProcess`` objects; close them when the test ends."""
    started = []

    def start(*args, stall_at, env=None):
        started.append(SweepProcess(settings, *args, stall_at=stall_at, env=env))
        return started[-1]

    yield start
    for sweep in started:
        sweep.close()


def stored_names(root):
    """Return the names of the files under ``root/uploads``, as the sweep names them."""
    return {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, files in os.walk(root / "uploads")
        for name in files
    }


def row_names():
    return set(Media.objects.values_list("file", flat=True))


def run_status(run_id):
    return CleanupRun.objects.get(pk=run_id).status


def manifest_text(run_folder):
    """Return what a run's manifest parts hold so far, as text (a part being written included)."""
    return "".join(part.read_text("utf-8", "replace") for part in sorted(run_folder.glob("manifest-*")))


def wait_until(condition, what, timeout=120):
    """Wait until ``condition()`` holds; fail, saying ``what`` did not happen, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def wait_until_disconnected(application_name, timeout=60):
    """Wait until the server has ended every session of a process (a killed one's included)."""
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name]
            )
            if cursor.fetchone()[0] == 0:
                return
        assert time.monotonic() < deadline, f"the sessions of {application_name} did not end"
        time.sleep(0.05)


def assert_one_line_per_trouble(stderr):
    """Expected trouble is logged one line each, never as a traceback."""
    assert "Traceback" not in stderr
    for line in stderr.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (WARNING|ERROR) |CommandError: ", line), line


def assert_converged(estate, media_root):
    """Check that exactly the files and rows in use are left."""
    assert stored_names(media_root) == set(estate.live)
    assert row_names() == set(estate.live)


# -- killed midway ---------------------------------------------------------------------------


@pytest.mark.parametrize("quarantine_days", [7, 0], ids=["quarantine", "delete"])
@pytest.mark.parametrize("phase", ["rows", "files"])
def test_a_sweep_killed_midway_is_marked_interrupted_and_a_rerun_converges(
    phase, quarantine_days, estate, media_root, quarantine_root, manage_py, start_sweep
):
    env = {"MEDIA_CLEANUP_QUARANTINE_DAYS": str(quarantine_days)}
    if phase == "rows":
        stall_at = estate.orphaned[MIDWAY]
        # The files process removed every stray meanwhile.
        removed = estate.orphaned[:MIDWAY] + estate.strays
        # The next batch's rows were checked and deleted while its files waited their turn.
        rows_left = set(estate.live) | set(estate.orphaned[BATCH_END + PAGE_SIZE :])
    else:
        stall_at = estate.strays[MIDWAY]
        removed = estate.orphaned + estate.strays[:MIDWAY]
        rows_left = set(estate.live)
    killed = start_sweep("--min-age", GRACE, stall_at=stall_at, env=env)

    killed.wait_until_stalled()
    wait_until(lambda: row_names() == rows_left, "the sweep went on to the next batch's rows")
    wait_until(lambda: not set(removed) & stored_names(media_root), "the other process's files went")
    killed.process.send_signal(signal.SIGKILL)
    # Its pipes close once its files process has ended too, at once, within its batch.
    code, _, _ = killed.finish(timeout=60)
    wait_until_disconnected(killed.application_name)

    assert code == -signal.SIGKILL
    all_files = set(estate.live + estate.orphaned + estate.strays)
    assert stored_names(media_root) == all_files - set(removed), "the kill did not land where it was aimed"
    assert row_names() == rows_left
    assert run_status(killed.run_id) == "running"

    rerun = manage_py("cleanup_media", "--json", "--min-age", GRACE, env=env)

    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert (report["status"], report["deleted_files"]) == ("ok", len(all_files) - LIVE - len(removed))
    assert run_status(killed.run_id) == "interrupted"
    assert_converged(estate, media_root)
    if quarantine_days:
        assert stored_names(quarantine_root / killed.run_id) == set(removed)
        assert stored_names(quarantine_root / report["run_id"]) == all_files - set(estate.live) - set(removed)


# -- database connection terminated ----------------------------------------------------------


LOCK_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((classid::bigint << 32) | objid::bigint) = %s"
)


def terminate_sessions(application_name, which):
    """Terminate a process's own session, the one holding the sweep's lock, or both; return how many."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        sessions = {pid for (pid,) in cursor.fetchall()}
        cursor.execute(LOCK_HOLDER, [ADVISORY_LOCK_KEY])
        (lock_holder,) = cursor.fetchone()
        assert lock_holder in sessions, "the sweep does not hold its lock"
        doomed = {
            "its-connection": sessions - {lock_holder},
            "lock-connection-too": sessions,
            "lock-connection-only": {lock_holder},
        }[which]
        for pid in doomed:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    return len(doomed)


@pytest.mark.parametrize(
    "sessions",
    [
        "its-connection",
        "lock-connection-too",
        "lock-connection-only",
    ],
)
def test_a_sweep_whose_database_connection_is_terminated_fails_and_a_rerun_converges(
    sessions, estate, media_root, quarantine_root, manage_py, start_sweep
):
    sweep = start_sweep("--min-age", GRACE, stall_at=estate.strays[ONE_BATCH_EARLIER])
    sweep.wait_until_stalled()
    # The orphaned rows went meanwhile, with their files, in the sweep's own process.
    wait_until(lambda: row_names() == set(estate.live), "the orphaned rows went")
    wait_until(lambda: not set(estate.orphaned) & stored_names(media_root), "the orphaned rows' files went")
    # The batch after the stalled one is checked, and recorded in the manifest, before the
    # database goes: it is carried out after the stall, and no batch after it.
    wait_until(
        lambda: estate.strays[BATCH_END - PAGE_SIZE] in manifest_text(quarantine_root / sweep.run_id),
        "the sweep checked the batch after the stalled one",
    )
    terminated = terminate_sessions(sweep.application_name, sessions)
    sweep.release()
    code, out, err = sweep.finish()

    # The sweep's own session and its files process's, besides the one that holds the lock.
    assert terminated == {"its-connection": 2, "lock-connection-too": 3, "lock-connection-only": 1}[sessions]
    assert code == 1
    report = json.loads(out)
    assert report["status"] == "failed" and report["message"]
    assert run_status(sweep.run_id) == "failed"
    assert_one_line_per_trouble(err)
    assert len(stored_names(media_root)) == LIVE + STRAYS - BATCH_END

    rerun = manage_py("cleanup_media", "--json", "--min-age", GRACE)

    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["deleted_files"] == STRAYS - BATCH_END
    assert_converged(estate, media_root)


# -- deletes refused -------------------------------------------------------------------------


@pytest.mark.parametrize("quarantine_days", [7, 0], ids=["quarantine", "delete"])
def test_files_the_disk_refuses_to_give_up_are_counted_and_a_later_run_removes_them(
    quarantine_days, estate, settings, media_root, quarantine_root, manage_py
):
    env = {"MEDIA_CLEANUP_QUARANTINE_DAYS": str(quarantine_days)}
    refused = {name for name in estate.orphaned + estate.strays if f"/{REFUSED_FOLDER}/" in name}
    run_id = str(uuid.uuid4())
    if quarantine_days:
        # A file where the quarantine needs a folder: each move into it fails.
        for kind in ("guides", "archive"):
            blocker = quarantine_root / run_id / "uploads" / kind / REFUSED_FOLDER
            blocker.parent.mkdir(parents=True)
            blocker.write_bytes(b"in the way")
        faults = {}
    else:
        faults = {
            "DJANGO_SETTINGS_MODULE": "tests.settings_faults",
            "MEDIA_TEST_FAIL_DELETES": f"/{REFUSED_FOLDER}/",
        }

    first = manage_py(
        "cleanup_media", "--json", "--min-age", GRACE, "--run-id", run_id, env={**env, **faults}
    )

    assert first.returncode == 1
    report = json.loads(first.stdout)
    assert (report["status"], report["error_count"]) == ("errors", len(refused))
    assert (report["deleted_records"], report["deleted_files"]) == (
        ORPHANED,
        ORPHANED + STRAYS - len(refused),
    )
    assert_one_line_per_trouble(first.stderr)
    assert first.stderr.count("Could not remove") == len(refused)
    assert stored_names(media_root) == set(estate.live) | refused
    assert row_names() == set(estate.live)

    later = manage_py("cleanup_media", "--json", "--min-age", GRACE, env=env)

    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["deleted_files"] == len(refused)
    assert_converged(estate, media_root)


# -- uploads racing sweeps -------------------------------------------------------------------


class Uploader(threading.Thread):
    """Upload files as a slow request does: the file is written, a sweep runs, then the row commits.

    The race is arranged, not left to timing: in each round every uploader writes its file and
    holds its transaction open, the sweep runs, and only then do the uploads commit. One upload
    in five (drawn from a seeded generator) is abandoned: its transaction rolls back and leaves
    its file behind.
    """

    class Abandoned(Exception):
        pass

    def __init__(self, owner, seed, stop, rounds):
        super().__init__()
        self.owner = owner
        self.random = random.Random(seed)
        self.stop = stop
        self.rounds = rounds
        self.committed = []
        self.abandoned = []
        self.failure = None

    def run(self):
        try:
            while True:
                self.upload()
                if self.stop.is_set():
                    return
        except threading.BrokenBarrierError:
            pass  # the test gave up on the race: its own assertion says why
        except Exception as exc:  # reported by the test, which cannot see a thread's exception
            self.failure = exc
        finally:
            connection.close()

    def upload(self):
        abandon = self.random.random() < 0.2
        try:
            with transaction.atomic():
                media = Media(content_object=self.owner, file=ContentFile(b"uploaded", name="upload.jpg"))
                media.save()
                self.rounds.wait(timeout=STEP_TIMEOUT)  # in flight: the sweep may start
                self.rounds.wait(timeout=STEP_TIMEOUT)  # the sweep has run; the request ends
                if abandon:
                    raise self.Abandoned
        except self.Abandoned:
            self.abandoned.append(media.file.name)
        else:
            self.committed.append(media.file.name)


def test_uploads_racing_repeated_sweeps_are_never_lost(estate, media_root, manage_py):
    stop, rounds = threading.Event(), threading.Barrier(UPLOADERS + 1)
    uploaders = [Uploader(factories.tour(), seed, stop, rounds) for seed in range(UPLOADERS)]
    for uploader in uploaders:
        uploader.start()
    reports = []
    deadline = time.monotonic() + RACE_SECONDS
    try:
        while not stop.is_set():
            rounds.wait(timeout=STEP_TIMEOUT)  # every uploader has a file written, its row not committed
            swept = manage_py("cleanup_media", "--json", "--min-age", "5s")
            assert swept.returncode == 0, swept.stderr
            reports.append(json.loads(swept.stdout))
            if time.monotonic() > deadline:
                stop.set()  # before the uploads go on, so that they end after this round
            rounds.wait(timeout=STEP_TIMEOUT)
    finally:
        stop.set()
        rounds.abort()  # an uploader still waiting (the test failed midway) ends
        for uploader in uploaders:
            uploader.join()

    assert not [uploader.failure for uploader in uploaders if uploader.failure]
    committed = [name for uploader in uploaders for name in uploader.committed]
    abandoned = [name for uploader in uploaders for name in uploader.abandoned]
    lost = [name for name in committed if not (media_root / name).exists()]
    assert not lost, f"{len(lost)} of {len(committed)} uploads lost to {len(reports)} sweeps"
    assert all(report["young_files"] >= UPLOADERS for report in reports), (
        "each sweep met every upload in flight"
    )

    final = run_cleanup(min_age="5s", now=timezone.now() + timedelta(minutes=1))

    assert final.status == "ok"
    assert stored_names(media_root) == set(estate.live) | set(committed)
    assert row_names() == set(estate.live) | set(committed)
    assert not any((media_root / name).exists() for name in abandoned)
