"""Start the sweep in a process of its own, so that the web request that asks for it stays short."""

import itertools
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import conf

logger = logging.getLogger(__name__)

# Heads the output of each run started here in the log, followed by "a run <id>" or "a dry run <id>".
STARTING = "cleanup_media (admin): starting"


def start_cleanup_process(*, dry_run, min_age):
    """Start ``manage.py cleanup_media --trigger admin`` detached; return ``(run id, process id)``.

    The run writes its ``CleanupRun`` row under that id as it starts; its output goes to
    ``MEDIA_CLEANUP_LOG_FILE``. Raise OSError when the process cannot be started.
    """
    run_id = str(uuid.uuid4())
    command = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "cleanup_media",
        "--trigger=admin",
        f"--run-id={run_id}",
        f"--min-age={int(min_age.total_seconds())}",
        "--no-input",
    ]
    if dry_run:
        command.append("--dry-run")
    with _open_log() as log:
        stamp = timezone.now().isoformat(timespec="seconds")
        log.write(f"{stamp} {STARTING} {'a dry run' if dry_run else 'a run'} {run_id}\n")
        log.flush()
        # The child inherits this server's environment and reads the same .env, so it sees the
        # same database and MEDIA_ROOT; its command line holds options only, no secret.
        # A new session keeps it alive when the worker that started it is recycled; the
        # subprocess module reaps it on a later start.
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    logger.info("Started cleanup %s (dry run: %s)", run_id, dry_run)
    return run_id, process.pid


def process_alive(pid, run_id=None):
    """Return True while process ``pid`` of this host runs (with ``--run-id=<run_id>``, if given).

    A zombie (ended, not yet reaped by the server that started it) counts as ended; a pid
    reused by another program does not match ``run_id``.
    """
    if not pid:
        return False
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        arguments = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    return run_id is None or f"--run-id={run_id}".encode() in arguments


def log_excerpt(run_id, max_lines=20, window=256 * 1024):
    """Return the last lines the admin's run ``run_id`` wrote to the log after its "starting" line."""
    path = conf.log_file()
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - window))
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    for number, line in enumerate(lines):
        if STARTING in line and line.endswith(f" {run_id}"):
            output = list(itertools.takewhile(lambda text: STARTING not in text, lines[number + 1 :]))
            return output[-max_lines:]  # the end says how it ended
    return []


def _open_log():
    path = conf.log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a")
    except OSError as exc:
        logger.warning("Cannot write the cleanup log %s (%s); the run's output is dropped", path, exc)
        return open(os.devnull, "w")
