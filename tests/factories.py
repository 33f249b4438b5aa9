"""Owners and media for tests, built through the project's own models."""

import itertools

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from media_app.models import Media
from tours.models import Company, Driver, Guide, Tour

_sequence = itertools.count(1)


def company(**fields):
    return Company.objects.create(**{"name": f"Company {next(_sequence)}", **fields})


def tour(**fields):
    number = next(_sequence)
    return Tour.objects.create(
        **{"title": f"Tour {number}", "slug": f"tour-{number}", "price_gel": "50.00", **fields}
    )


def guide(**fields):
    return Guide.objects.create(**{"full_name": f"Guide {next(_sequence)}", **fields})


def driver(**fields):
    return Driver.objects.create(**{"full_name": f"Driver {next(_sequence)}", **fields})


def user(**fields):
    return get_user_model().objects.create_user(**{"username": f"user{next(_sequence)}", **fields})


OWNERS = {"tours": tour, "companies": company, "guides": guide, "drivers": driver, "users": user}


def media(owner, name="photo.jpg", content=b"not really a jpeg"):
    """Create a media row with a real stored file."""
    return Media.objects.create(content_object=owner, file=ContentFile(content, name=name))
