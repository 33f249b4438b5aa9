"""Start the sweep in a process of its own, so that the web request that asks for it stays short."""

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


def start_cleanup_process(*, dry_run, min_age):
    """Start ``manage.py cleanup_media --trigger admin`` detached; return the run id it will record.

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
        log.write(f"{stamp} cleanup_media (admin): starting {'a dry run' if dry_run else 'a run'} {run_id}\n")
        log.flush()
        # The child inherits this server's environment and reads the same .env, so it sees the
        # same database and MEDIA_ROOT; its command line holds options only, no secret.
        # A new session keeps it alive when the worker that started it is recycled; the
        # subprocess module reaps it on a later start.
        subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    logger.info("Started cleanup %s (dry run: %s)", run_id, dry_run)
    return run_id


def _open_log():
    path = conf.log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a")
    except OSError as exc:
        logger.warning("Cannot write the cleanup log %s (%s); the run's output is dropped", path, exc)
        return open(os.devnull, "w")
