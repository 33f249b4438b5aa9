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


def referenced_names(names, using):
    """Return the subset of ``names`` that some row of some FileField references."""
    names = list(names)
    found = set()
    if not names:
        return found
    for model, field_name in file_fields():
        rows = model._base_manager.using(using).filter(**{f"{field_name}__in": names})
        found.update(rows.order_by().values_list(field_name, flat=True))
    return found
