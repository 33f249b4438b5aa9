"""Build the benchmark's data set through the project's own models: owners, media rows and files.

Per owner type (tours, companies, guides, drivers, users) the data set holds an equal share of
``size`` media rows, ten per owner, and plants 1% orphans of each kind: rows whose owner was
deleted behind the ORM's back (their files exist), files that no row names (dated two days
back), and rows of live owners whose file was never written. Files and rows both total ``size``.
"""

import dataclasses
import itertools
import math
import os
import random
import time
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connection
from django.utils import timezone

from media_app.models import UPLOADS_FOLDER, CleanupRun, Media, owner_folder
from tours.models import Company, Driver, Guide, Tour

MEDIA_PER_OWNER = 10
MIN_SIZE = 1000
ORPHAN_SHARE = 0.01
BATCH_SIZE = 10_000
CONTENT = b"tiny file of the benchmark\n"
STRAY_AGE_SECONDS = 2 * 86400
MEDIA_COLUMNS = [
    "id",
    "content_type",
    "object_id",
    "file",
    "original_name",
    "size",
    "mime_type",
    "caption",
    "created_at",
]
OWNER_BUILDERS = {
    Tour: lambda n: Tour(title=f"Tour {n}", slug=f"tour-{n}", price_gel=Decimal("50.00")),
    Company: lambda n: Company(name=f"Company {n}"),
    Guide: lambda n: Guide(full_name=f"Guide {n}"),
    Driver: lambda n: Driver(full_name=f"Driver {n}"),
}


@dataclasses.dataclass
class Manifest:
    """What a generated data set holds: the totals and the orphans planted of each kind, per folder."""

    size: int
    rows: int = 0
    files: int = 0
    orphaned_records: int = 0
    orphaned_files: int = 0
    missing_files: int = 0
    folders: dict = dataclasses.field(default_factory=dict)
    # What a real run removes, kept to put it back (``replant``): the orphaned rows, the strays.
    orphaned_rows: list = dataclasses.field(default_factory=list, repr=False)
    stray_names: list = dataclasses.field(default_factory=list, repr=False)

    def figures(self):
        """Return the counts, for the report's raw JSON."""
        return {
            key: value for key, value in vars(self).items() if key not in ("orphaned_rows", "stray_names")
        }

    def add(self, folder, rows, files, orphaned_records, orphaned_files, missing_files):
        self.folders[folder] = {
            "rows": rows,
            "files": files,
            "orphaned_records": orphaned_records,
            "orphaned_files": orphaned_files,
            "missing_files": missing_files,
        }
        self.rows += rows
        self.files += files
        self.orphaned_records += orphaned_records
        self.orphaned_files += orphaned_files
        self.missing_files += missing_files


def owner_models():
    """Return the five owner models, users last."""
    return [*OWNER_BUILDERS, get_user_model()]


def build_owner(model, number):
    if model in OWNER_BUILDERS:
        return OWNER_BUILDERS[model](number)
    return model(username=f"user{number}", password="!")  # "!": an unusable password, and fast


def reset():
    """Empty the tables the data set fills (owners, media, run history) so that sizes never mix."""
    tables = [model._meta.db_table for model in [Media, CleanupRun, *owner_models()]]
    statements = connection.ops.sql_flush(no_style(), tables, allow_cascade=True)
    connection.ops.execute_sql_flush(statements)


def generate(size, media_root, seed=5):
    """Fill the database and ``media_root`` with ``size`` rows and files; return the Manifest."""
    if size < MIN_SIZE:
        raise ValueError(f"a data set needs at least {MIN_SIZE:,} rows, for 1% of each kind in each folder")
    rng = random.Random(seed)
    manifest = Manifest(size=size)
    shares = [size // 5 + (1 if index < size % 5 else 0) for index in range(5)]
    for model, rows in zip(owner_models(), shares, strict=True):
        folder = owner_folder(model)
        os.makedirs(os.path.join(media_root, UPLOADS_FOLDER, folder), exist_ok=True)
        owners = [build_owner(model, number) for number in range(math.ceil(rows / MEDIA_PER_OWNER))]
        model.objects.bulk_create(owners, batch_size=BATCH_SIZE)
        planted = max(1, round(rows * ORPHAN_SHARE))
        doomed_owners = max(1, round(planted / MEDIA_PER_OWNER))
        content_type = ContentType.objects.get_for_model(model)
        media = _media_rows(
            rng, media_root, folder, content_type, [owner.pk for owner in owners], rows, planted
        )
        # The rows of the doomed owners come first; each has its file (the missing ones come last).
        orphaned = list(itertools.islice(media, doomed_owners * MEDIA_PER_OWNER))
        insert_rows(Media, MEDIA_COLUMNS, itertools.chain(orphaned, media))
        delete_raw(model, [owner.pk for owner in owners[:doomed_owners]])
        manifest.orphaned_rows += orphaned
        for number in range(planted):
            name = _file_name(rng, folder, f"stray-{number}")
            _write_stray(media_root, name)
            manifest.stray_names.append(name)
        # Files: every row's but the ``planted`` missing ones, plus ``planted`` strays.
        manifest.add(folder, rows, rows, len(orphaned), planted, planted)
    analyze()
    return manifest


def replant(manifest, media_root):
    """Put back what a real run removed: the orphaned rows with their files, and the stray files."""
    insert_rows(Media, MEDIA_COLUMNS, manifest.orphaned_rows)
    file_index = MEDIA_COLUMNS.index("file")
    for row in manifest.orphaned_rows:
        _write_file(os.path.join(media_root, row[file_index]))
    for name in manifest.stray_names:
        _write_stray(media_root, name)


def _file_name(rng, folder, label):
    return f"{UPLOADS_FOLDER}/{folder}/{rng.getrandbits(64):016x}-{label}.jpg"


def _media_rows(rng, media_root, folder, content_type, owner_pks, rows, missing):
    """Yield media rows in MEDIA_COLUMNS order, writing each one's file unless among the last ``missing``."""
    created_at = timezone.now()
    for number in range(rows):
        name = _file_name(rng, folder, f"photo-{number}")
        if number < rows - missing:
            _write_file(os.path.join(media_root, name))
        yield (
            uuid.UUID(int=rng.getrandbits(128), version=4),
            content_type.pk,
            owner_pks[number // MEDIA_PER_OWNER],
            name,
            f"photo-{number}.jpg",
            len(CONTENT),
            "image/jpeg",
            "",
            created_at,
        )


def _write_file(path):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(descriptor, CONTENT)
    finally:
        os.close(descriptor)


def _write_stray(media_root, name):
    path = os.path.join(media_root, name)
    _write_file(path)
    then = time.time() - STRAY_AGE_SECONDS
    os.utime(path, (then, then))


def insert_rows(model, field_names, rows):
    """Insert tuples of ``field_names`` values: COPY on PostgreSQL, ``bulk_create`` batches elsewhere."""
    fields = [model._meta.get_field(name) for name in field_names]
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    attnames = [field.attname for field in fields]
    rows = iter(rows)
    while batch := list(itertools.islice(rows, BATCH_SIZE)):
        model.objects.bulk_create([model(**dict(zip(attnames, row, strict=True))) for row in batch])


def delete_raw(model, pks):
    """Delete rows with raw SQL, as a script or a restore would: no signals, no cascade."""
    pk = model._meta.pk
    placeholders = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} "
            f"WHERE {connection.ops.quote_name(pk.column)} IN ({placeholders})",
            [pk.get_db_prep_value(value, connection) for value in pks],
        )


def analyze():
    """Refresh the planner's statistics (and, on PostgreSQL, the visibility map) after the bulk load."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
