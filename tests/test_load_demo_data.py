import time

import pytest
from django.core.management import call_command

from media_app.models import Media
from tours.management.commands import load_demo_data
from tours.models import Tour

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_data_can_be_loaded_twice_and_leaves_the_promised_drift(media_root):
    call_command("load_demo_data", verbosity=0)
    call_command("load_demo_data", verbosity=0)

    assert Tour.objects.count() == len(load_demo_data.TOURS)
    live_owner_ids = set(Tour.objects.values_list("pk", flat=True))
    orphaned = Media.objects.filter(content_type__model="tour").exclude(object_id__in=live_owner_ids)
    assert orphaned.count() == 2 * 2, "each load leaves two orphaned rows (no sweep ran in between)"
    two_days_ago = time.time() - load_demo_data.STRAY_AGE.total_seconds()
    for name in load_demo_data.STRAY_FILES:
        assert abs((media_root / name).stat().st_mtime - two_days_ago) < 60
    missing = [m for m in Media.objects.all() if not (media_root / m.file.name).exists()]
    assert len(missing) == 1, "the previous load's tours were replaced, with their missing file"
