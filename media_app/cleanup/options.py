"""The options of a sweep: what ``run_cleanup()`` accepts, and what its run history keeps of them."""

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.core.files.storage import Storage, default_storage
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from .. import conf
from ..durations import parse_duration
from ..models import CleanupRun

# Key in ``CleanupRun.options`` of a run limited to a selection (how many rows): not a sweep.
SELECTION_OPTION = "media_ids"
# Field metadata: how ``CleanupOptions.recorded()`` writes the field in ``CleanupRun.options``.
_RECORDED = "recorded"


def _seconds(duration):
    return None if duration is None else duration.total_seconds()


def _recorded(default, convert=lambda value: value):
    """Return a field that the run history keeps, written by ``convert`` (JSON holds no timedelta)."""
    return dataclasses.field(default=default, metadata={_RECORDED: convert})


@dataclasses.dataclass(frozen=True, kw_only=True)
class CleanupOptions:
    """The options of one run, resolved: durations parsed, defaults taken from the settings.

    - ``dry_run``: count and report exactly as a real run would (cap included); remove nothing.
    - ``min_age``: grace period (timedelta or duration text); younger files are never removed as
      orphans. Default: ``MEDIA_CLEANUP_MIN_AGE``.
    - ``force``: lift the safety cap (``MEDIA_CLEANUP_MAX_DELETE_RATIO``/``_CAP_MIN_ITEMS``).
    - ``time_limit``: stop deleting once the run has taken this long (status ``partial``).
    - ``rate``: delete at most this many items per second.
    - ``trigger``: what started the run, as its history records it.
    - ``now``: the clock used for the grace period and history retention (tests move it).
    - ``using`` and ``storage``: the database and the media storage to sweep.
    - ``walker``: lists and deletes stored files; by default one for ``storage``.
    - ``media_ids``: limit the run to these media rows (the admin's selection): only the
      orphaned rows among them go, with their files; storage is not listed and, the
      selection being a person's explicit choice, the safety cap does not apply.
    - ``purge_quarantine``: purge every quarantined run now, not only those past retention.
    - ``run_id``: the id of the run's history row; a new one by default.
    - ``on_item(kind, name)`` and ``on_progress(result)``: optional callbacks for a face.
    - ``files_process``: on PostgreSQL with local files, remove the orphaned files in a forked
      process beside the orphaned rows (``files_process.py``). For processes that exist to run
      one sweep (the command, the cron job); a web server's process is never forked.
    """

    dry_run: bool = _recorded(False)
    min_age: timedelta | str | None = _recorded(None, _seconds)
    force: bool = _recorded(False)
    time_limit: timedelta | str | None = _recorded(None, _seconds)
    rate: int | None = _recorded(None)
    trigger: str = CleanupRun.Trigger.CODE
    now: datetime | None = None
    using: str = DEFAULT_DB_ALIAS
    storage: Storage | None = None
    walker: object = None
    media_ids: Iterable | None = None
    purge_quarantine: bool = _recorded(False)
    run_id: str | None = None
    on_item: Callable | None = None
    on_progress: Callable | None = None
    files_process: bool = False

    def __post_init__(self):
        resolved = {
            "now": self.now or timezone.now(),
            "min_age": conf.min_age() if self.min_age is None else parse_duration(self.min_age),
            "time_limit": None if self.time_limit is None else parse_duration(self.time_limit),
            "storage": self.storage or default_storage,
            "media_ids": None if self.media_ids is None else tuple(str(pk) for pk in self.media_ids),
            "run_id": str(self.run_id or uuid.uuid4()),
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)  # the documented way to set a frozen field once

    def recorded(self):
        """Return what the run history keeps of these options: ``CleanupRun.options``."""
        options = {
            field.name: field.metadata[_RECORDED](getattr(self, field.name))
            for field in dataclasses.fields(self)
            if _RECORDED in field.metadata
        }
        if self.media_ids is not None:
            options[SELECTION_OPTION] = len(self.media_ids)
        return options
