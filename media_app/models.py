import collections
import secrets
import uuid

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import translation
from django.utils.text import slugify

from .paths import UPLOADS_FOLDER, base_name, name_room, sanitise_filename, shorten
from .uploads import describe_type, validate_upload


def owner_folder(owner_model):
    """Return the folder for an owner type: its plural name, e.g. ``tours`` or ``companies``."""
    with translation.override(None):
        return slugify(str(owner_model._meta.verbose_name_plural)) or "other"


def media_upload_to(instance, filename):
    """Return ``uploads/<owner plural>/<random hex>-<sanitised name>``, short enough for every limit."""
    model = instance.content_type.model_class() if instance.content_type_id else None
    folder = owner_folder(model) if model else "other"
    prefix = f"{UPLOADS_FOLDER}/{folder}/{secrets.token_hex(8)}-"
    field = instance._meta.get_field("file")
    max_bytes, max_chars = name_room(prefix, field.storage, field.max_length)
    return prefix + sanitise_filename(filename, max_bytes, max_chars)


class MediaQuerySet(models.QuerySet):
    """Selections of media rows by the state of their owner."""

    def owner_types(self):
        """Return ``([(content type, model)], [stale content types])`` of these rows' owners.

        A type is stale when it has no model any more, or a key that cannot match ``object_id``.
        """
        type_ids = self.order_by().values_list("content_type_id", flat=True).distinct()
        live, stale = [], []
        for content_type in ContentType.objects.using(self.db).filter(pk__in=list(type_ids)):
            model = content_type.model_class()
            if model is not None and isinstance(model._meta.pk, models.UUIDField):
                live.append((content_type, model))
            else:
                stale.append(content_type)
        return live, stale

    def orphaned(self, owner_types=None):
        """Return the rows whose owner row is gone; rows of a stale type are never among them.

        ``owner_types`` limits the selection to those live types (as ``owner_types()`` returns
        them); by default it covers every live type of these rows. It is one anti-join per type.
        """
        return self.filter(self._owner_gone(owner_types))

    def orphaned_instances(self, owner_types):
        """Return, as model instances, the rows of this (small) selection whose owner row is gone.

        The same rows as ``orphaned(owner_types)``, found another way: the selection is read
        once, then each owner type among it is asked for the keys it still holds, by primary
        key. For a batch of a thousand rows, ``orphaned()`` (its anti-joins OR-ed in one query)
        had PostgreSQL read and hash whole owner tables: a cost that grows with the tables,
        85 ms a batch at ten million rows, against a few milliseconds of lookups.
        """
        models_by_type = {content_type.pk: model for content_type, model in owner_types}
        rows = list(self.filter(content_type__in=list(models_by_type)))
        owners = collections.defaultdict(set)
        for row in rows:
            owners[row.content_type_id].add(row.object_id)
        present = set()
        for type_id, keys in owners.items():
            found = models_by_type[type_id]._base_manager.using(self.db).filter(pk__in=keys)
            present.update((type_id, key) for key in found.values_list("pk", flat=True))
        return [row for row in rows if (row.content_type_id, row.object_id) not in present]

    def not_orphaned(self):
        """Return the rows ``orphaned()`` leaves out: their owner exists, or their type is stale."""
        return self.exclude(self._owner_gone())

    def _owner_gone(self, owner_types=None):
        if owner_types is None:
            owner_types, _ = self.owner_types()
        condition = Q(pk__in=[])
        for content_type, model in owner_types:
            owners = model._base_manager.using(self.db).filter(pk=OuterRef("object_id"))
            condition |= Q(content_type=content_type) & ~Exists(owners)
        return condition


class Media(models.Model):
    """An uploaded file that belongs to one owner (a tour, company, guide, driver or user)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.UUIDField()
    content_object = GenericForeignKey("content_type", "object_id")
    file = models.FileField(upload_to=media_upload_to, max_length=255, validators=[validate_upload])
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField("size (bytes)", default=0, editable=False)
    mime_type = models.CharField("MIME type", max_length=100, blank=True, editable=False)
    caption = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MediaQuerySet.as_manager()

    class Meta:
        verbose_name = "media file"
        verbose_name_plural = "media files"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="media_owner_idx"),
            models.Index(fields=["file"], name="media_file_idx"),
        ]

    def __str__(self):
        return self.original_name or self.file.name

    def save(self, *args, **kwargs):
        # A file assigned but not yet stored: describe it before upload_to renames it.
        if self.file and not self.file._committed:
            max_length = self._meta.get_field("original_name").max_length
            self.original_name = shorten(base_name(self.file.name), max_length)
            self.size = self.file.size
            self.mime_type = describe_type(self.file.file, self.original_name)
        super().save(*args, **kwargs)

    @property
    def is_image(self):
        return self.mime_type.startswith("image/")


class CleanupRun(models.Model):
    """One run of the cleanup sweep: its options, status and figures (the run history)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        PARTIAL = "partial"
        ERRORS = "errors"
        FAILED = "failed"
        REFUSED = "refused"
        LOCKED = "locked"
        INTERRUPTED = "interrupted"

    class Trigger(models.TextChoices):
        COMMAND = "command"
        CRON = "cron"
        ADMIN = "admin"
        CODE = "code"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.CODE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True)
    dry_run = models.BooleanField(default=False)
    options = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    # Known when the run ends (it quarantined something) and cleared when its quarantine is
    # purged, so that the admin never asks the storage to offer a restore.
    restorable = models.BooleanField(default=False)

    records_checked = models.PositiveBigIntegerField(default=0)
    files_checked = models.PositiveBigIntegerField(default=0)
    orphaned_records = models.PositiveBigIntegerField(default=0)
    orphaned_files = models.PositiveBigIntegerField(default=0)
    missing_files = models.PositiveBigIntegerField(default=0)
    stale_type_records = models.PositiveBigIntegerField(default=0)
    refused_paths = models.PositiveBigIntegerField(default=0)
    unreadable_names = models.PositiveBigIntegerField(default=0)
    young_files = models.PositiveBigIntegerField(default=0)
    deleted_records = models.PositiveBigIntegerField(default=0)
    deleted_files = models.PositiveBigIntegerField(default=0)
    already_gone = models.PositiveBigIntegerField(default=0)
    bytes_freed = models.PositiveBigIntegerField(default=0)
    quarantined_bytes = models.PositiveBigIntegerField(default=0)
    purged_runs = models.PositiveIntegerField(default=0)
    purged_bytes = models.PositiveBigIntegerField(default=0)
    error_count = models.PositiveBigIntegerField(default=0)
    # The storage as the run listed it (files under uploads/, young ones included) and what the
    # quarantine held at its end: the trend the admin charts and the metrics export.
    storage_files = models.PositiveBigIntegerField(default=0)
    storage_bytes = models.PositiveBigIntegerField(default=0)
    quarantine_bytes = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    sample = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self):
        kind = "dry run" if self.dry_run else "run"
        return f"{kind} {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def run_id(self):
        """The id as ``cleanup_media --json`` prints it (a run row reads like a ``CleanupResult``)."""
        return str(self.pk)


class DatabaseIdentity(models.Model):
    """This database's identity: the id its media storage and quarantine are marked with.

    One row, made the first time it is asked for. It travels with a dump and restore of the
    database, as it should: the restored database is the same installation.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "database identity"
        verbose_name_plural = "database identity"

    def __str__(self):
        return str(self.uuid)

    @classmethod
    def current(cls, using):
        """Return this database's identity as a string, making it the first time."""
        identity, _ = cls.objects.using(using).get_or_create(pk=1)
        return str(identity.uuid)
