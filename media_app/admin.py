import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .admin_charts import RunCharts
from .admin_restore import RestorePages
from .admin_sweep import SweepPages, readable_duration
from .cleanup.engine import run_cleanup
from .models import CleanupRun, Media

logger = logging.getLogger(__name__)

# The thumbnails' size, in a stylesheet rather than a style attribute (a strict CSP allows it).
THUMBNAILS = forms.Media(css={"all": ["media_app/media.css"]})

# The action runs within the request: a selection is small. More goes to the sweep page.
MAX_SELECTION = 1000


@admin.display(description="preview")
def thumbnail(media):
    """Show an image scaled in HTML: no derived files in storage, which nothing would reference."""
    if not (media.pk and media.file and media.is_image):
        return "—"
    return format_html(
        '<img src="{}" alt="{}" loading="lazy" class="media-thumbnail">',
        media.file.url,
        media.original_name,
    )


@admin.display(description="size", ordering="size")
def human_size(media):
    return filesizeformat(media.size)


class MediaInline(GenericTabularInline):
    """Upload and see an owner's media on the owner's own admin page."""

    @property
    def media(self):
        return super().media + THUMBNAILS

    model = Media
    extra = 1
    fields = ["file", "caption", thumbnail, human_size, "mime_type"]
    readonly_fields = [thumbnail, human_size, "mime_type"]


class OwnerMissingFilter(admin.SimpleListFilter):
    """Filter media by whether their owner row is gone."""

    title = "owner missing"
    parameter_name = "owner_missing"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.orphaned()
        if self.value() == "no":
            return queryset.not_orphaned()
        return queryset


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    @property
    def media(self):
        return super().media + THUMBNAILS

    list_display = [thumbnail, "__str__", "owner", "content_type", human_size, "mime_type", "created_at"]
    list_filter = [OwnerMissingFilter, "content_type", "mime_type", "created_at"]
    change_list_template = "admin/media_app/change_list_with_sweep.html"
    actions = ["clean_up_orphaned_selection"]
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

    @admin.action(description="Clean up selected media whose owner is gone", permissions=["delete"])
    def clean_up_orphaned_selection(self, request, queryset):
        """Remove the selected media whose owner is gone, with their files; keep the others."""
        selected = list(queryset.order_by().values_list("pk", flat=True)[: MAX_SELECTION + 1])
        if len(selected) > MAX_SELECTION:
            self.message_user(
                request,
                f"Select at most {MAX_SELECTION} media for this action; the sweep page cleans up any number.",
                messages.ERROR,
            )
            return
        result = run_cleanup(media_ids=selected, trigger=CleanupRun.Trigger.ADMIN)
        self.message_user(request, selection_message(result, len(selected)), selection_level(result))


def selection_message(result, selected):
    """Return the message that reports a run of the action on ``selected`` media."""
    if result.status == CleanupRun.Status.LOCKED:
        return "Another cleanup run holds the lock; nothing was done. Try again when it has finished."
    text = (
        f"Removed {result.deleted_records} of the {selected} selected media whose owner is gone, "
        f"with {result.deleted_files} files; kept {selected - result.deleted_records}."
    )
    if result.error_count:
        text += f" {result.error_count} errors: {'; '.join(result.errors[:3])}."
    if result.message:
        text += f" {result.message}"
    return text


def selection_level(result):
    return messages.SUCCESS if result.exit_code == 0 else messages.ERROR


@admin.register(CleanupRun)
class CleanupRunAdmin(RunCharts, RestorePages, SweepPages, admin.ModelAdmin):
    """The sweep's run history: read-only, since every row is a record of what happened."""

    list_display = [
        "started_at",
        "report",
        "status",
        "trigger",
        "dry_run",
        "orphaned_records",
        "orphaned_files",
        "missing_files",
        "deleted_records",
        "deleted_files",
        "error_count",
        "duration",
    ]
    list_filter = ["status", "trigger", "dry_run"]
    change_list_template = "admin/media_app/cleanuprun/change_list.html"
    date_hierarchy = "started_at"

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, run):
        return "—" if run.duration_seconds is None else readable_duration(run.duration_seconds)

    @admin.display(description="figures and errors")
    def report(self, run):
        url = reverse("admin:media_app_cleanuprun_report", args=[run.pk])
        return format_html('<a href="{}">report</a>', url)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
