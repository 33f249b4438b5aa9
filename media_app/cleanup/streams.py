"""The database's side of the merge: referenced names and orphaned rows, streamed in byte order."""

from contextlib import contextmanager

from django.db import DatabaseError, connections, models
from django.db.models.functions import Collate

from .. import references
from ..models import Media

# Rows fetched per round trip of the streams the merge reads (a page of names is ~0.5 MiB).
STREAM_CHUNK = 5_000
# Collations under which the database orders text as Python orders str (code points, which
# for UTF-8 is byte order). The merge depends on it and checks it as it goes.
BYTE_ORDER_COLLATIONS = {"postgresql": "C", "sqlite": "BINARY"}


def byte_order(connection, field_name):
    """Return an ``order_by()`` expression that sorts ``field_name`` in byte order on ``connection``."""
    collation = BYTE_ORDER_COLLATIONS.get(connection.vendor)
    return Collate(field_name, collation) if collation else models.F(field_name)


def reference_streams(using):
    """Return ``[(model, rows)]``: per FileField, its rows' names in byte order, one per row.

    Media rows come as ``(name, size)``, the size recorded at upload, so that the sweep can add
    up the storage's size without asking the storage for each file; other models' as names.
    """
    streams = []
    for model, field_name in references.file_fields():
        rows = model._base_manager.using(using).order_by(byte_order(connections[using], field_name))
        rows = (
            rows.values_list(field_name, "size")
            if model is Media
            else rows.values_list(field_name, flat=True)
        )
        streams.append((model, rows.iterator(chunk_size=STREAM_CHUNK)))
    return streams


def orphan_streams(using, owner_types):
    """Return per owner type the ``(name, pk)`` of its orphaned media rows, in byte order of names."""
    media = Media.objects.using(using)
    # One query per type, so that PostgreSQL plans each as one hash anti-join.
    return [
        media.orphaned([owner_type])
        .order_by(byte_order(connections[using], "file"))
        .values_list("file", "pk")
        .iterator(chunk_size=STREAM_CHUNK)
        for owner_type in owner_types
    ]


@contextmanager
def planned_for_whole_results(connection):
    """Have PostgreSQL plan the sweep's cursors for reading every row, as the sweep does.

    By default PostgreSQL plans a cursor for a fast first row (``cursor_tuple_fraction``
    0.1): an orphan query then walks the name index with a per-row lookup (seconds at a
    million rows) instead of one hash anti-join and a small sort (a tenth of a second).
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET cursor_tuple_fraction = 1.0")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET cursor_tuple_fraction")
        except DatabaseError:
            pass  # the connection is gone, and the setting with it
