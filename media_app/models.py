import mimetypes
import secrets
import uuid

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import translation
from django.utils.text import slugify

from .paths import sanitise_filename

UPLOADS_FOLDER = "uploads"


def owner_folder(owner_model):
    """Return the folder for an owner type: its plural name, e.g. ``tours`` or ``companies``."""
    with translation.override(None):
        return slugify(str(owner_model._meta.verbose_name_plural)) or "other"


def media_upload_to(instance, filename):
    """Return ``uploads/<owner plural>/<random hex>-<sanitised name>`` for a new file."""
    model = instance.content_type.model_class() if instance.content_type_id else None
    folder = owner_folder(model) if model else "other"
    return f"{UPLOADS_FOLDER}/{folder}/{secrets.token_hex(8)}-{sanitise_filename(filename)}"


class Media(models.Model):
    """An uploaded file that belongs to one owner (a tour, company, guide, driver or user)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.UUIDField()
    content_object = GenericForeignKey("content_type", "object_id")
    file = models.FileField(upload_to=media_upload_to, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField("size (bytes)", default=0, editable=False)
    mime_type = models.CharField("MIME type", max_length=100, blank=True, editable=False)
    caption = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

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
            self.original_name = self.file.name.replace("\\", "/").rsplit("/", 1)[-1][:255]
            self.size = self.file.size
            self.mime_type = mimetypes.guess_type(self.original_name)[0] or ""
        super().save(*args, **kwargs)

    @property
    def is_image(self):
        return self.mime_type.startswith("image/")
