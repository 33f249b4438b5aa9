"""Which file names the project's rows still reference, across every FileField."""

from django.apps import apps
from django.db import models


def file_fields():
    """Return ``(model, field_name)`` for every FileField (ImageField included) of the project."""
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.FileField)
    ]


def referenced_names(names, using, excluding=None):
    """Return the subset of ``names`` that some row of some FileField references.

    ``excluding`` maps a model to primary keys whose rows do not count (rows about to go).
    """
    names = list(names)
    found = set()
    if not names:
        return found
    for model, field_name in file_fields():
        rows = model._base_manager.using(using).filter(**{f"{field_name}__in": names})
        if excluding and model in excluding:
            rows = rows.exclude(pk__in=excluding[model])
        found.update(rows.order_by().values_list(field_name, flat=True))
    return found
