"""The database's streams for the merge: names in byte order, whatever the database's collation."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media_app.cleanup.streams import (
    COLLECT_WORK_MEM,
    STREAM_CHUNK,
    byte_order,
    orphan_pages,
    planned_for_whole_results,
    reference_pages,
)
from media_app.models import Media
from tests import factories

pytestmark = pytest.mark.django_db

# Byte order puts upper case before lower case and Georgian last; a language's collation does not.
NAMES = ["uploads/tours/Zebra.jpg", "uploads/tours/apple.jpg", "uploads/tours/ä.jpg", "uploads/tours/თ.jpg"]


def test_referenced_names_come_in_byte_order_once_per_row_with_media_sizes():
    tour = factories.tour()
    for size, name in enumerate([*reversed(NAMES), NAMES[0]]):
        Media.objects.create(content_object=tour, file=name, size=size)

    with CaptureQueriesContext(connection) as queries:
        media, others = reference_pages("default")
        rows = [row for names, sizes in media for row in zip(names, sizes, strict=True)]

    assert others == [], "Media is the project's only FileField"
    assert [name for name, _ in rows] == sorted([*NAMES, NAMES[0]], key=str.encode)
    assert {(name, size) for name, size in rows} == set(Media.objects.values_list("file", "size"))
    # A database created with a byte-order locale sorts so by itself: the order must be asked for.
    assert re.search(r'ORDER BY .*COLLATE "(C|BINARY)"', queries[-1]["sql"])


def test_orphaned_rows_come_per_owner_type_in_byte_order():
    tour, guide = factories.tour(), factories.guide()
    rows = {
        Media.objects.create(content_object=owner, file=name) for name in NAMES for owner in (tour, guide)
    }
    factories.delete_behind_the_orms_back(tour)
    factories.delete_behind_the_orms_back(guide)
    live_types, _ = Media.objects.owner_types()

    streams = [
        [row for names, pks in pages for row in zip(names, pks, strict=True)]
        for pages in orphan_pages("default", live_types)
    ]

    assert len(streams) == 2
    for stream in streams:
        assert [name for name, _ in stream] == sorted(NAMES, key=str.encode)
    assert {pk for stream in streams for _, pk in stream} == {row.pk for row in rows}


def test_rows_come_a_page_at_a_time_and_the_query_runs_at_once(settings):
    tour = factories.tour()
    Media.objects.bulk_create(
        Media(content_object=tour, file=f"uploads/tours/{n:05}.jpg", size=n) for n in range(STREAM_CHUNK + 2)
    )

    with CaptureQueriesContext(connection) as queries:
        media, _ = reference_pages("default")
        ran = len(queries)
        pages = list(media)

    assert ran == 1, "the query runs before the first page is asked for: in the caller's thread"
    assert [len(names) for names, _ in pages] == [STREAM_CHUNK, 2]
    assert pages[1] == (["uploads/tours/05000.jpg", "uploads/tours/05001.jpg"], [5000, 5001])


def test_postgresql_plans_for_whole_results_within_the_block_only():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL planner setting")

    def fraction():
        with connection.cursor() as cursor:
            cursor.execute("SHOW cursor_tuple_fraction")
            return float(cursor.fetchone()[0])

    before = fraction()
    with planned_for_whole_results(connection):
        assert fraction() == 1.0
    assert fraction() == before


def test_postgresql_puts_back_the_sessions_own_cursor_tuple_fraction():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL planner setting")
    with connection.cursor() as cursor:
        cursor.execute("SET cursor_tuple_fraction = 0.5")
    try:
        with planned_for_whole_results(connection):
            pass
        with connection.cursor() as cursor:
            cursor.execute("SHOW cursor_tuple_fraction")
            assert float(cursor.fetchone()[0]) == 0.5
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET cursor_tuple_fraction")


def _work_mem():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_bytes(current_setting('work_mem'))")
        return cursor.fetchone()[0]


def _pg_size(value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_bytes(%s)", [value])
        return cursor.fetchone()[0]


def _set_work_mem(value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, false)", [value])


@pytest.fixture
def work_mem_restored():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL setting")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET work_mem")


def test_postgresql_hashes_owners_in_memory_within_the_block_only(work_mem_restored):
    """The orphan queries' owner hashes get ``COLLECT_WORK_MEM``; the session's own value comes back."""
    _set_work_mem("4MB")

    with planned_for_whole_results(connection):
        assert _work_mem() == 64 * 1024 * 1024 == _pg_size(COLLECT_WORK_MEM)

    assert _work_mem() == 4 * 1024 * 1024


def test_postgresql_work_mem_set_larger_by_the_operator_is_never_lowered(work_mem_restored):
    _set_work_mem("256MB")

    with planned_for_whole_results(connection):
        assert _work_mem() == 256 * 1024 * 1024

    assert _work_mem() == 256 * 1024 * 1024


def test_postgresql_reads_the_media_rows_from_the_index_alone():
    """Names and sizes in byte order come from the index that holds both: no visit to the table per row."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL index")
    tour = factories.tour()
    Media.objects.bulk_create(Media(content_object=tour, file=f"uploads/tours/{n}.jpg") for n in range(50))
    rows = Media.objects.order_by(byte_order(connection, "file")).values_list("file", "size")
    sql, params = rows.query.sql_with_params()

    with connection.cursor() as cursor:
        # So small a table is read whole and sorted; a large one is not: ask for the index.
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(line for (line,) in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")

    assert "Index Only Scan using media_file_bytes_size_idx" in plan, plan
