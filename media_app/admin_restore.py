"""Take a run back from the admin: a preview of the restore, then its confirmation.

The preview reads the run's manifest only (``preview_run()``); the confirmation calls
``restore_run()``, the entry point for restores, which asks the storage about each item. A
restore is as large as what one run removed, so it runs within the request; ``manage.py
restore_media`` does the same from a shell. Only users who may add media may restore; only POST
restores (CSRF-protected).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from .cleanup.restore import RestoreStatus, preview_run, restore_run


class RestorePages:
    """Add "restore this run" to the run history's admin."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.restore_view)
        return [
            path("<uuid:run_id>/restore/", view, name="media_app_cleanuprun_restore"),
            *super().get_urls(),
        ]

    def restore_view(self, request, run_id):
        """Show what a restore would bring back; on POST, restore and report."""
        if not request.user.has_perm("media_app.add_media"):
            raise PermissionDenied
        run_id = str(run_id)
        if request.method == "POST":
            result = restore_run(run_id)
            level = messages.SUCCESS if result.status == RestoreStatus.OK else messages.WARNING
            self.message_user(request, restore_message(result), level)
            return redirect("admin:media_app_cleanuprun_report", run_id=run_id)
        preview = preview_run(run_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Restore a cleanup run",
            "run_id": run_id,
            "preview": preview,
            "restorable": preview.status in (RestoreStatus.OK, RestoreStatus.PARTIAL)
            and bool(preview.restored_files or preview.restored_records),
        }
        return TemplateResponse(request, "admin/media_app/cleanuprun/restore.html", context)


def restore_message(result):
    """Return the message that reports a restore."""
    text = (
        f"Restore {result.status}: {result.restored_files} files and {result.restored_records} rows "
        f"put back; {result.skipped} skipped."
    )
    if result.skipped_items:
        text += " " + "; ".join(f"{item['name']}: {item['reason']}" for item in result.skipped_items[:3])
    return f"{text} {result.message}".strip()
