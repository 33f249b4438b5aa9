"""Which names rows still reference: byte for byte, and on PostgreSQL from the sweep's own index."""

import unicodedata

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media_app.models import Media
from media_app.references import referenced_names
from tests import factories

pytestmark = pytest.mark.django_db

STORED = ["uploads/tours/Zebra.jpg", "uploads/tours/ä.jpg", "uploads/tours/თბილისი.jpg"]


def test_only_names_equal_byte_for_byte_are_referenced():
    tour = factories.tour()
    for name in STORED:
        Media.objects.create(content_object=tour, file=name)
    lookalikes = [
        "uploads/tours/zebra.jpg",  # another case
        unicodedata.normalize("NFD", "uploads/tours/ä.jpg"),  # a + combining diaeresis
        "uploads/tours/თბილისი.jpg ",  # a trailing space
    ]

    assert referenced_names([*STORED, *lookalikes], "default") == set(STORED)
    assert referenced_names(lookalikes, "default") == set()
    assert referenced_names([], "default") == set()


def test_postgresql_looks_names_up_in_the_byte_order_index():
    """The index the sweep has just read whole answers, not a second, cold index of the same names."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL index")
    tour = factories.tour()
    Media.objects.bulk_create(Media(content_object=tour, file=f"uploads/tours/{n}.jpg") for n in range(50))

    with CaptureQueriesContext(connection) as queries:
        referenced_names(["uploads/tours/7.jpg", "uploads/tours/none.jpg"], "default")
    (query,) = queries.captured_queries
    with connection.cursor() as cursor:
        # So small a table is read whole; a large one is not: ask for an index.
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN " + query["sql"])
            plan = "\n".join(line for (line,) in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")

    assert "media_file_bytes_size_idx" in plan, plan
