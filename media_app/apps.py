from django.apps import AppConfig


class MediaAppConfig(AppConfig):
    name = "media_app"
    verbose_name = "Media"

    def ready(self):
        from . import alerts, checks, metrics, signals
        from .cleanup.history import run_ended
        from .models import CleanupRun

        signals.connect()
        checks.register()
        run_ended.connect(
            metrics.write_metrics_run_ended, sender=CleanupRun, dispatch_uid="write_metrics_run_ended"
        )
        run_ended.connect(alerts.send_alert_run_ended, sender=CleanupRun, dispatch_uid="send_alert_run_ended")
