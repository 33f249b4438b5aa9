"""Which file names the project's rows still reference, across every FileField."""

from django.apps import apps
from django.db import connections, models
from django.db.models.functions import Collate

# Collations under which the database orders text as Python orders str (code points, which
# for UTF-8 is byte order). The sweep's merge depends on it and checks it as it goes.
BYTE_ORDER_COLLATIONS = {"postgresql": "C", "sqlite": "BINARY"}


def byte_order(connection, field_name):
    """Return an expression of ``field_name`` that sorts and compares in byte order on ``connection``."""
    collation = BYTE_ORDER_COLLATIONS.get(connection.vendor)
    return Collate(field_name, collation) if collation else models.F(field_name)


def file_fields():
    """Return ``(model, field_name)`` for every FileField (ImageField included) of the project."""
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.FileField)
    ]


def referenced_names(names, using):
    """Return the subset of ``names`` that some row of some FileField references.

    Names are compared in byte order, as the sweep streams them: under the database's own
    collation two names are equal only when their bytes are too (PostgreSQL's deterministic
    collations, SQLite's BINARY), so the answer is the same. But on PostgreSQL the media rows'
    lookup then reads the byte-order index (migration 0009), which the sweep has just read
    whole, rather than the plain index of the same names that nothing else reads: at ten
    million rows the sweep's re-check of a batch of 1,000 names waited 26 ms on that index
    coming from the disk.
    """
    names = list(names)
    found = set()
    if not names:
        return found
    connection = connections[using]
    for model, field_name in file_fields():
        rows = model._base_manager.using(using).alias(referenced_name=byte_order(connection, field_name))
        found.update(rows.filter(referenced_name__in=names).order_by().values_list(field_name, flat=True))
    return found
