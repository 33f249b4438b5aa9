"""The passes the sweep is compared with: the floor's row stream and two naive designs of a sweep.

Both naive designs check the same two things, files no row names and rows whose owner is gone;
neither looks for missing files. They run inside a probe process, after ``django.setup()``.
"""

import itertools
import time
from collections import defaultdict

from django.contrib.contenttypes.models import ContentType

from media_app.models import Media

from .walk import walk_files

PAGE_SIZE = 2000


def stream_rows():
    """Stream every media row's file name once (the floor's second pass); return how many."""
    # order_by() drops Media's default ordering (-created_at): the floor pays for no order.
    return {"items": sum(1 for _ in Media.objects.order_by().values_list("file", flat=True).iterator())}


def _owner_models():
    return {content_type.pk: content_type.model_class() for content_type in ContentType.objects.all()}


def per_item(media_root, sample):
    """Check ``sample`` files and ``sample`` rows with one query each; return the timings to extrapolate."""
    names = list(itertools.islice(walk_files(media_root), sample))
    rows = list(Media.objects.order_by().values_list("content_type_id", "object_id")[:sample])
    models = _owner_models()
    started = time.perf_counter()
    unreferenced = sum(not Media.objects.filter(file=name).exists() for name in names)
    files_seconds = time.perf_counter() - started
    started = time.perf_counter()
    orphaned = sum(not models[type_id]._base_manager.filter(pk=owner).exists() for type_id, owner in rows)
    return {
        "sampled_files": len(names),
        "sampled_rows": len(rows),
        "files_seconds": files_seconds,
        "rows_seconds": time.perf_counter() - started,
        "orphaned_files": unreferenced,
        "orphaned_records": orphaned,
    }


def batched(media_root, page_size=PAGE_SIZE):
    """Check every file and row in pages of ``page_size`` names, one ``__in`` query per page and type."""
    unreferenced = 0
    names = walk_files(media_root)
    while page := list(itertools.islice(names, page_size)):
        referenced = set(Media.objects.filter(file__in=page).values_list("file", flat=True))
        unreferenced += sum(name not in referenced for name in page)
    models = _owner_models()
    orphaned = 0
    rows = Media.objects.order_by().values_list("content_type_id", "object_id").iterator(chunk_size=page_size)
    while page := list(itertools.islice(rows, page_size)):
        owners_by_type = defaultdict(list)
        for type_id, owner in page:
            owners_by_type[type_id].append(owner)
        for type_id, owners in owners_by_type.items():
            live = set(models[type_id]._base_manager.filter(pk__in=owners).values_list("pk", flat=True))
            orphaned += sum(owner not in live for owner in owners)
    return {"orphaned_files": unreferenced, "orphaned_records": orphaned}
