"""The database's side of the merge: referenced names and orphaned rows, streamed in byte order."""

from contextlib import contextmanager
from operator import itemgetter

from django.db import DatabaseError, connections
from django.db.models.sql.constants import MULTI

from .. import references
from ..models import Media
from ..references import byte_order
from .batches import batched

# Rows fetched per round trip of the streams the merge reads (a page of names is ~0.5 MiB).
STREAM_CHUNK = 5_000
# Orphaned rows per round trip: one stream per owner type waits in memory until the merge
# reaches its names, so its pages are kept small (at ten million rows, pages of 5,000 of
# each of five types cost 8 MiB more than at a million, measured).
ORPHAN_CHUNK = 1_000
FIRST, SECOND = itemgetter(0), itemgetter(1)
# PostgreSQL's memory for each hash and sort of the collect phase's queries, at least (see
# ``planned_for_whole_results``). Per query node on the server, never in the sweep's process.
COLLECT_WORK_MEM = "64MB"


def reference_pages(using):
    """Return the names every FileField's rows reference, in byte order, one per row, in pages.

    A page is ``(names, payload)``, as ``merge.windows()`` takes it. Return ``(media, others)``:
    the media rows' pages, with the size each row recorded at upload as payload (so that the
    sweep can add up the storage's size without asking the storage for each file), and
    ``[(model, pages)]`` of the project's other FileFields, without payload.
    """
    media, others = None, []
    for model, field_name in references.file_fields():
        rows = model._base_manager.using(using).order_by(byte_order(connections[using], field_name))
        if model is Media:
            media = _columns(rows.values_list(field_name, "size"), 2)
        else:
            others.append((model, _columns(rows.values_list(field_name), 1)))
    return media, others


def _columns(queryset, width):
    """Run the query now; return its rows a page at a time, as ``(first column, second column or None)``.

    The rows come as the database cursor fetches them, a page per round trip, without
    Django's per-row iterator: at a million rows, its per-row work cost a sixth of a dry run
    (docs/benchmarks.md). Only plain text and integer columns come this way: no field of
    theirs converts the value the database gives. The query runs in the caller's thread, on
    its connection; the pages may then be fetched from another thread (``prefetch.py``).
    """
    # As QuerySet.iterator() does: a server-side cursor unless the settings disable them.
    chunked = not connections[queryset.db].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    compiler = queryset.query.get_compiler(using=queryset.db)
    pages = compiler.execute_sql(MULTI, chunked_fetch=chunked, chunk_size=STREAM_CHUNK)
    return _split(pages, width)


def _split(pages, width):
    try:
        for rows in pages:
            # Not zip(*rows): its thousands of argument iterators set off the garbage collector,
            # which doubled the time of a page (measured).
            yield list(map(FIRST, rows)), list(map(SECOND, rows)) if width > 1 else None
    finally:
        close = getattr(pages, "close", None)
        if close:
            close()  # the server-side cursor, when the sweep stops early


def orphan_pages(using, owner_types):
    """Return per owner type the pages ``(names, pks)`` of its orphaned media rows, in byte order of names.

    They are few (rows whose owner is gone): they come through Django's iterator, primary keys
    converted as for any query.
    """
    media = Media.objects.using(using)
    # One query per type, so that PostgreSQL plans each as one hash anti-join.
    return [
        (
            tuple(zip(*rows, strict=True))
            for rows in batched(
                media.orphaned([owner_type])
                .order_by(byte_order(connections[using], "file"))
                .values_list("file", "pk")
                .iterator(chunk_size=ORPHAN_CHUNK),
                ORPHAN_CHUNK,
            )
        )
        for owner_type in owner_types
    ]


@contextmanager
def planned_for_whole_results(connection):
    """Have PostgreSQL plan and run the sweep's cursors for reading every row, as the sweep does.

    By default PostgreSQL plans a cursor for a fast first row (``cursor_tuple_fraction``
    0.1): an orphan query then walks the name index with a per-row lookup (seconds at a
    million rows) instead of one hash anti-join and a small sort (a tenth of a second).

    Each orphan query hashes the owners of one type for its anti-join. Past some 150,000
    owners the server's default ``work_mem`` (4 MB) no longer holds the hash, and PostgreSQL
    spills it to temporary files and joins in batches: at ten million rows (200,000 owners
    a type) a query took 1.27 s instead of 0.55 s, before the first name could be merged.
    Within the block the session's ``work_mem`` is raised to ``COLLECT_WORK_MEM``, never
    lowered, and put back afterwards.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('cursor_tuple_fraction'), current_setting('work_mem')")
        fraction, work_mem = cursor.fetchone()  # the session's own, put back afterwards
        cursor.execute(
            "SELECT set_config('cursor_tuple_fraction', '1.0', false), set_config('work_mem',"
            " CASE WHEN pg_size_bytes(%s) < pg_size_bytes(%s) THEN %s ELSE %s END, false)",
            [work_mem, COLLECT_WORK_MEM, COLLECT_WORK_MEM, work_mem],
        )
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('cursor_tuple_fraction', %s, false),"
                    " set_config('work_mem', %s, false)",
                    [fraction, work_mem],
                )
        except DatabaseError:
            pass  # the connection is gone, and the settings with it
