"""Owners and media for tests, built through the project's own models."""

import io
import itertools
import os
import time

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection
from PIL import Image

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


def staff_user(*permissions, **fields):
    """Create a staff user with exactly these permissions (codenames of media_app)."""
    from django.contrib.auth.models import Permission

    staff = user(is_staff=True, **fields)
    staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label="media_app", codename__in=permissions)
    )
    return staff


OWNERS = {"tours": tour, "companies": company, "guides": guide, "drivers": driver, "users": user}


def media(owner, name="photo.jpg", content=b"not really a jpeg"):
    """Create a media row with a real stored file."""
    return Media.objects.create(content_object=owner, file=ContentFile(content, name=name))


def delete_behind_the_orms_back(obj):
    """Delete a row with raw SQL, as a script, a restore or a crash would: no signals, no cascade."""
    model = type(obj)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {model._meta.db_table} WHERE {model._meta.pk.column} = %s",
            [model._meta.pk.get_db_prep_value(obj.pk, connection)],
        )


def stray_file(media_root, name, content=b"stray", age_days=2):
    """Write a file that no row references, last modified ``age_days`` ago."""
    path = media_root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age_days * 86400
    os.utime(path, (then, then))
    return path


def image_bytes(format="JPEG", size=(8, 6)):
    """Return a real image file's bytes, made with Pillow."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 60)).save(buffer, format)
    return buffer.getvalue()


PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
