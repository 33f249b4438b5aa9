"""The database's streams for the merge: names in byte order, whatever the database's collation."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media_app.cleanup.streams import orphan_streams, planned_for_whole_results, reference_streams
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
        rows = list(dict(reference_streams("default"))[Media])

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

    streams = [list(stream) for stream in orphan_streams("default", live_types)]

    assert len(streams) == 2
    for stream in streams:
        assert [name for name, _ in stream] == sorted(NAMES, key=str.encode)
    assert {pk for stream in streams for _, pk in stream} == {row.pk for row in rows}


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
