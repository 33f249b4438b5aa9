from django.contrib import admin
from django.contrib.contenttypes.admin import GenericTabularInline
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .models import CleanupRun, Media


@admin.display(description="preview")
def thumbnail(media):
    """Show an image scaled in HTML: no derived files in storage, which nothing would reference."""
    if not (media.pk and media.file and media.is_image):
        return "—"
    return format_html(
        '<img src="{}" alt="{}" loading="lazy" style="max-height:80px;max-width:120px">',
        media.file.url,
        media.original_name,
    )


@admin.display(description="size", ordering="size")
def human_size(media):
    return filesizeformat(media.size)


class MediaInline(GenericTabularInline):
    """Upload and see an owner's media on the owner's own admin page."""

    model = Media
    extra = 1
    fields = ["file", "caption", thumbnail, human_size, "mime_type"]
    readonly_fields = [thumbnail, human_size, "mime_type"]


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    list_display = [thumbnail, "__str__", "owner", "content_type", human_size, "mime_type", "created_at"]
    list_filter = ["content_type", "mime_type", "created_at"]
    search_fields = ["original_name", "file", "caption"]
    readonly_fields = [thumbnail, "owner", human_size, "mime_type", "original_name", "created_at"]
    fields = [
        "content_type",
        "object_id",
        "owner",
        "file",
        thumbnail,
        "caption",
        "original_name",
        human_size,
        "mime_type",
        "created_at",
    ]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # One query per owner type instead of one per row for the owner column.
        return super().get_queryset(request).select_related("content_type").prefetch_related("content_object")

    @admin.display(description="owner")
    def owner(self, media):
        owner = media.content_object
        if owner is None:
            return format_html('<span class="owner-missing">missing ({})</span>', media.object_id)
        try:
            url = reverse(f"admin:{owner._meta.app_label}_{owner._meta.model_name}_change", args=[owner.pk])
        except NoReverseMatch:
            return str(owner)
        return format_html('<a href="{}">{}</a>', url, owner)


@admin.register(CleanupRun)
class CleanupRunAdmin(admin.ModelAdmin):
    """The sweep's run history: read-only, since every row is a record of what happened."""

    list_display = [
        "started_at",
        "status",
        "trigger",
        "dry_run",
        "orphaned_records",
        "orphaned_files",
        "missing_files",
        "deleted_records",
        "deleted_files",
        "error_count",
        "duration_seconds",
    ]
    list_filter = ["status", "trigger", "dry_run"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
