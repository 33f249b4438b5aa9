"""Random histories keep the promise: nothing in use is ever lost, and whatever drifted is repaired.

A history is a random sequence of what users, scripts and operators do: create an owner, attach
media, share a file between rows, replace a file, delete media or an owner normally, delete an
owner or a media row with raw SQL, bring an owner back from a backup, lose a file from the disk,
drop a stray file or symlink into ``uploads/``, move the clock, run the sweep (dry or real,
forced or not, with a grace period), and restore a sweep from the quarantine.
A model of the history says what must be where; after every step:

- every file a media row references is there, intact, unless the history itself lost it;
- ``uploads/`` holds exactly the files the model expects, and the database exactly its rows;
- nothing outside ``uploads/`` and the quarantine changed (a symlink's target included).

After every sweep: its figures are the ones the model predicts; a dry or refused run changes
nothing; a real run leaves no orphaned row and no unreferenced file past the grace period and
removes nothing else; with the quarantine on, each file it removed is in the quarantine, intact,
until the retention has passed, and gone after. A restore brings back every quarantined file
whose path is free and every row whose owner exists again, and skips the rest.
"""

import dataclasses
import itertools
import os
import shutil
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from media_app.cleanup.backends.base import MARKER_NAME
from media_app.cleanup.engine import run_cleanup
from media_app.cleanup.restore import restore_run
from media_app.models import CleanupRun, Media
from tests import factories
from tests.conftest import tree
from tours.models import Company, Driver, Guide, Tour

HISTORIES = 300
STEPS_PER_HISTORY = 50
GRACE_PERIODS = {"0": 0, "1h": 3600, "24h": 86400}
QUARANTINE_DAYS = 7
CAP_MIN_ITEMS = 3  # low, so that random histories meet the safety cap too
CAP_RATIO = 0.5


@dataclasses.dataclass
class Row:
    """A media row as the model knows it."""

    pk: str
    owner: int
    name: str


@dataclasses.dataclass
class QuarantinedRun:
    """What a real sweep moved into the quarantine, as the model knows it."""

    created: object
    manifest_files: set  # every file the run took
    files: dict  # name -> content, for those still in the quarantine
    rows: dict  # key -> Row, every row the run deleted


class Histories(RuleBasedStateMachine):
    """Drive the project through one random history and check it against a model after each step."""

    def __init__(self, world):
        super().__init__()
        self.world = world
        world.reset()
        self.outside = world.outside_snapshot()
        self.now = timezone.now().replace(microsecond=0)
        self.owners = {}  # key -> live owner object
        self.gone_owners = {}  # key -> owner deleted behind the ORM's back
        self.rows = {}  # key -> Row
        self.files = {}  # name under uploads/ -> (mtime, ("file", bytes) or ("link", target))
        self.lost = set()  # referenced names the history removed from the disk
        self.quarantined = {}  # run id -> QuarantinedRun
        self.numbers = itertools.count(1)
        self.overrides = None

    # -- what people and scripts do ----------------------------------------------------------

    @initialize(quarantine_days=st.sampled_from([QUARANTINE_DAYS, 0]))
    def configure(self, quarantine_days):
        # Enabled here and disabled in teardown(): overrides that piled up history after history
        # would make every settings lookup recurse through all of them.
        self.overrides = override_settings(MEDIA_CLEANUP_QUARANTINE_DAYS=quarantine_days)
        self.overrides.enable()
        self.quarantine_days = quarantine_days

    def teardown(self):
        if self.overrides:
            self.overrides.disable()

    @rule(kind=st.sampled_from(sorted(factories.OWNERS)))
    def create_owner(self, kind):
        self.owners[next(self.numbers)] = factories.OWNERS[kind]()

    @precondition(lambda self: self.owners)
    @rule(data=st.data())
    def attach_media(self, data):
        owner = self.draw_owner(data)
        key = next(self.numbers)
        content = f"photo {key}".encode()
        row = factories.media(self.owners[owner], content=content)
        self.stamp(row.file.name, ("file", content))
        self.rows[key] = Row(str(row.pk), owner, row.file.name)

    @precondition(lambda self: self.owners and self.rows)
    @rule(data=st.data())
    def share_a_file(self, data):
        owner, row = self.draw_owner(data), self.draw_row(data)
        shared = Media.objects.create(content_object=self.owners[owner], file=row.name)
        self.rows[next(self.numbers)] = Row(str(shared.pk), owner, row.name)

    @precondition(lambda self: self.live_rows())
    @rule(data=st.data())
    def replace_a_file(self, data):
        key = data.draw(st.sampled_from(self.live_rows()), label="row")
        row = self.rows[key]
        content = f"replacement {next(self.numbers)}".encode()
        media = Media.objects.get(pk=row.pk)
        media.file = ContentFile(content, name="new.jpg")
        media.save()
        previous, row.name = row.name, media.file.name
        self.stamp(row.name, ("file", content))
        self.forget_unless_referenced([previous])

    @precondition(lambda self: self.rows)
    @rule(data=st.data())
    def delete_media(self, data):
        key = self.draw_row_key(data)
        Media.objects.get(pk=self.rows[key].pk).delete()
        self.forget_unless_referenced([self.rows.pop(key).name])

    @precondition(lambda self: self.owners)
    @rule(data=st.data())
    def delete_owner(self, data):
        owner = self.draw_owner(data)
        self.owners.pop(owner).delete()
        gone = [self.rows.pop(key).name for key in self.rows_of(owner)]
        self.forget_unless_referenced(gone)

    @precondition(lambda self: self.owners)
    @rule(data=st.data())
    def delete_owner_with_raw_sql(self, data):
        # An owner with media when there is one: the drift that matters is rows left orphaned.
        with_media = sorted({row.owner for row in self.rows.values()} & set(self.owners))
        owner = data.draw(st.sampled_from(with_media or sorted(self.owners)), label="owner")
        self.gone_owners[owner] = self.owners.pop(owner)
        factories.delete_behind_the_orms_back(self.gone_owners[owner])

    @precondition(lambda self: self.gone_owners)
    @rule(data=st.data())
    def bring_an_owner_back(self, data):
        """An owner comes back from a backup, with its id: its rows that are left are live again."""
        self.bring_back(data.draw(st.sampled_from(sorted(self.gone_owners)), label="owner"))

    @precondition(lambda self: self.rows)
    @rule(data=st.data())
    def delete_media_with_raw_sql(self, data):
        """A crash between the row and its file: the file stays, unreferenced."""
        key = self.draw_row_key(data)
        factories.delete_behind_the_orms_back(Media(pk=self.rows.pop(key).pk))

    @precondition(lambda self: any(row.name in self.files for row in self.rows.values()))
    @rule(data=st.data())
    def lose_a_file(self, data):
        """The disk loses a referenced file: the sweep must report it, and keep its row."""
        # Drawn by row key, not by name: names are random, and a draw must not depend on them.
        in_use = sorted(key for key, row in self.rows.items() if row.name in self.files)
        name = self.rows[data.draw(st.sampled_from(in_use), label="row")].name
        os.unlink(self.world.media_root / name)
        del self.files[name]
        self.lost.add(name)

    @rule(
        folder=st.sampled_from(["tours", "guides", "archive", "tours/2019/05"]),
        age_hours=st.sampled_from([0, 2, 48]),
        as_symlink=st.booleans(),
    )
    def drop_a_stray(self, folder, age_hours, as_symlink):
        name = f"uploads/{folder}/stray-{next(self.numbers)}.jpg"
        path = self.world.media_root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if as_symlink:
            target = str(self.world.outside_target)
            os.symlink(target, path)
            content = ("link", target)
        else:
            content = ("file", f"stray {name}".encode())
            path.write_bytes(content[1])
        self.stamp(name, content, age=timedelta(hours=age_hours))

    @rule(hours=st.sampled_from([1, 6, 25, 24 * 8]))
    def move_the_clock(self, hours):
        self.now += timedelta(hours=hours)

    @rule(dry_run=st.booleans(), force=st.booleans(), min_age=st.sampled_from(sorted(GRACE_PERIODS)))
    def sweep(self, dry_run, force, min_age):
        expected = self.predict(GRACE_PERIODS[min_age])
        refused = expected.pop("refused") and not force
        removed_rows, removed_files = expected.pop("removed_rows"), expected.pop("removed_files")
        uploads_before = self.world.uploads_snapshot()

        result = run_cleanup(dry_run=dry_run, force=force, min_age=min_age, now=self.now)

        assert result.status == ("refused" if refused else "ok"), result.message
        assert {figure: getattr(result, figure) for figure in expected} == expected
        removed = (0, 0) if refused else (len(removed_rows), len(removed_files))
        assert (result.deleted_records, result.deleted_files) == removed
        if refused or dry_run:
            assert self.world.uploads_snapshot() == uploads_before, "a dry or refused run changed uploads/"
            return
        deleted = {key: self.rows.pop(key) for key in removed_rows}
        taken = {name: self.files.pop(name)[1] for name in removed_files}
        if self.quarantine_days:
            self.purge_quarantined_runs()
            if taken or deleted:
                self.quarantined[result.run_id] = QuarantinedRun(self.now, set(taken), taken, deleted)

    @precondition(lambda self: self.restorable_runs())
    @rule(data=st.data())
    def restore_a_sweep(self, data):
        self.restore(data.draw(st.sampled_from(self.restorable_runs()), label="run"))

    @precondition(lambda self: self.restorable_runs(of_gone_owners=True))
    @rule(data=st.data())
    def take_back_a_mistake(self, data):
        """Owners were deleted by mistake: bring them back, then restore a sweep that removed their rows."""
        runs = self.restorable_runs(of_gone_owners=True)
        run_id = data.draw(st.sampled_from(runs), label="run")
        for owner in sorted(
            {row.owner for row in self.quarantined[run_id].rows.values()} & set(self.gone_owners)
        ):
            self.bring_back(owner)
        self.restore(run_id)

    def bring_back(self, owner):
        self.owners[owner] = self.gone_owners.pop(owner)
        self.owners[owner].save(force_insert=True)

    def restorable_runs(self, of_gone_owners=False):
        """Return the quarantined runs (in the order they ran); with ``of_gone_owners``, those
        with a row whose owner is gone now."""
        return [
            run_id
            for run_id, run in self.quarantined.items()
            if not of_gone_owners or any(row.owner in self.gone_owners for row in run.rows.values())
        ]

    def restore(self, run_id):
        run = self.quarantined[run_id]
        files_back = sorted(name for name in run.files if name not in self.files)
        existing = {row.pk for row in self.rows.values()}
        # A row comes back when its owner exists, it does not, and its file is there once the
        # files are back (a row never points at nothing: kept for a row that shared it, the
        # file may have gone with that row since).
        rows_back = [
            k
            for k, row in run.rows.items()
            if row.owner in self.owners
            and row.pk not in existing
            and (row.name in self.files or row.name in run.files)
        ]
        skipped = len(run.manifest_files) - len(files_back) + len(run.rows) - len(rows_back)

        result = restore_run(run_id)

        assert (result.status, result.restored_files, result.restored_records, result.skipped) == (
            "partial" if skipped else "ok",
            len(files_back),
            len(rows_back),
            skipped,
        )
        for name in files_back:
            # A restored file is fresh by the real clock, whatever the history's clock says.
            self.files[name] = (os.lstat(self.world.media_root / name).st_mtime, run.files.pop(name))
        # Copies: a row in use changes (a replaced file), its manifest entry does not.
        self.rows.update((key, dataclasses.replace(run.rows[key])) for key in rows_back)

    # -- the promise -------------------------------------------------------------------------

    @invariant()
    def files_in_use_are_there(self):
        missing = sorted(
            row.name
            for row in self.rows.values()
            if row.name not in self.lost and not os.path.lexists(self.world.media_root / row.name)
        )
        assert not missing, f"files in use were lost: {missing}"

    @invariant()
    def uploads_hold_what_the_history_left(self):
        expected = {self.world.media_root / name: content for name, (_, content) in self.files.items()}
        actual = {
            path: content for path, content in self.world.uploads_snapshot().items() if content[0] != "dir"
        }
        assert actual == {str(path): content for path, content in expected.items()}

    @invariant()
    def the_database_holds_what_the_history_left(self):
        actual = {str(pk): name for pk, name in Media.objects.values_list("pk", "file")}
        assert actual == {row.pk: row.name for row in self.rows.values()}

    @invariant()
    def nothing_outside_uploads_and_the_quarantine_changed(self):
        assert self.world.outside_snapshot() == self.outside

    @invariant()
    def quarantined_files_stay_until_the_retention_has_passed(self):
        for run_id, run in self.quarantined.items():
            for name, content in run.files.items():
                assert self.world.read(self.world.quarantine_root / run_id / name) == content, name

    # -- the model ---------------------------------------------------------------------------

    def predict(self, grace_seconds):
        """Return the figures a sweep must report now, what it would remove, and whether the cap refuses."""
        orphaned = {key for key, row in self.rows.items() if row.owner in self.gone_owners}
        references = Counter(row.name for row in self.rows.values())
        live_references = Counter(row.name for key, row in self.rows.items() if key not in orphaned)
        cutoff = (self.now - timedelta(seconds=grace_seconds)).timestamp()
        unreferenced = [name for name in self.files if not references[name]]
        young = [name for name in unreferenced if self.files[name][0] > cutoff]
        old = sorted(set(unreferenced) - set(young))
        with_rows = {self.rows[k].name for k in orphaned} - set(live_references)
        row_files = sorted(with_rows & set(self.files))
        doomed_files, doomed_rows = len(old) + len(row_files), len(orphaned)
        refused = any(
            doomed > CAP_MIN_ITEMS and doomed > CAP_RATIO * total
            for doomed, total in [(doomed_files, len(self.files)), (doomed_rows, len(self.rows))]
        )
        return {
            "records_checked": len(self.rows),
            "files_checked": len(self.files),
            "orphaned_records": len(orphaned),
            "orphaned_files": len(old),
            "young_files": len(young),
            "missing_files": sum(n for name, n in live_references.items() if name not in self.files),
            "error_count": 0,
            "refused": refused,
            "removed_rows": orphaned,
            "removed_files": old + row_files,
        }

    def purge_quarantined_runs(self):
        cutoff = self.now - timedelta(days=self.quarantine_days)
        for run_id, run in list(self.quarantined.items()):
            if run.created <= cutoff:
                del self.quarantined[run_id]
                assert not (self.world.quarantine_root / run_id).exists(), "a run past retention stayed"

    def stamp(self, name, content, age=timedelta(0)):
        """Give a new file the history's clock as its modification time, and remember it."""
        mtime = (self.now - age).timestamp()
        os.utime(self.world.media_root / name, (mtime, mtime), follow_symlinks=False)
        self.files[name] = (mtime, content)

    def forget_unless_referenced(self, names):
        """Expect the normal path to have deleted these files, unless a row still references them."""
        referenced = {row.name for row in self.rows.values()}
        for name in set(names) - referenced:
            self.files.pop(name, None)

    def live_rows(self):
        return sorted(key for key, row in self.rows.items() if row.owner in self.owners)

    def rows_of(self, owner):
        return [key for key, row in self.rows.items() if row.owner == owner]

    def draw_owner(self, data):
        return data.draw(st.sampled_from(sorted(self.owners)), label="owner")

    def draw_row_key(self, data):
        return data.draw(st.sampled_from(sorted(self.rows)), label="row")

    def draw_row(self, data):
        return self.rows[self.draw_row_key(data)]


class World:
    """The folders and tables a history plays in, emptied before each history."""

    def __init__(self, tmp_path, media_root, quarantine_root):
        self.root = tmp_path
        self.media_root = media_root
        self.quarantine_root = quarantine_root
        self.outside = tmp_path / "outside"
        self.outside_target = self.outside / "target.jpg"

    def reset(self):
        with connection.cursor() as cursor:
            for model in (Media, CleanupRun, Tour, Guide, Driver, Company, get_user_model()):
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
        for folder in (self.media_root, self.quarantine_root, self.outside):
            shutil.rmtree(folder, ignore_errors=True)
        for path, content in [
            (self.outside_target, b"outside MEDIA_ROOT"),
            (self.media_root / "other/old.jpg", b"outside uploads/"),
            (self.media_root / "root-file.txt", b"at the top of MEDIA_ROOT"),
        ]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    def uploads_snapshot(self):
        return tree(self.media_root / "uploads")

    def outside_snapshot(self):
        """Return everything but uploads/, the quarantine and the storage marker (binding.py's own)."""
        uploads, quarantine = str(self.media_root / "uploads"), str(self.quarantine_root)
        marker = str(self.media_root / MARKER_NAME)
        return {
            path: content
            for path, content in tree(self.root).items()
            if path != marker
            and not any(path == top or path.startswith(top + os.sep) for top in (uploads, quarantine))
        }

    @staticmethod
    def read(path):
        """Return a file's content or a symlink's target as ``tree()`` does; None when it is gone."""
        if os.path.islink(path):
            return ("link", os.readlink(path))
        return ("file", path.read_bytes()) if path.exists() else None


@pytest.mark.django_db(transaction=True)
def test_random_histories_keep_the_promise(tmp_path, media_root, quarantine_root, settings):
    settings.MEDIA_CLEANUP_CAP_MIN_ITEMS = CAP_MIN_ITEMS
    settings.MEDIA_CLEANUP_MAX_DELETE_RATIO = CAP_RATIO
    world = World(tmp_path, media_root, quarantine_root)

    run_state_machine_as_test(
        lambda: Histories(world),
        settings=hypothesis_settings(max_examples=HISTORIES, stateful_step_count=STEPS_PER_HISTORY),
    )
