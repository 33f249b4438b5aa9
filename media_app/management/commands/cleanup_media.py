import argparse
import json
import sys

from django.core.management.base import BaseCommand, CommandError

from media_app import conf
from media_app.cleanup.backends.base import StorageUnavailable
from media_app.cleanup.binding import StorageRefused, claim_storage
from media_app.cleanup.engine import freeze_loaded_objects, run_cleanup
from media_app.cleanup.exit_codes import USAGE_ERROR, described
from media_app.cleanup.lock import LockHeld
from media_app.cleanup.result import EXIT_CODES, Status, summary
from media_app.durations import parse_duration
from media_app.models import CleanupRun


def duration(text):
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid rate {text!r}: a whole number of items per second, 1 or more"
        )
    return int(text)


class Command(BaseCommand):
    help = (
        "Remove media rows whose owner is gone and files under uploads/ that nothing references. "
        f"Exit codes: {described(EXIT_CODES)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would go; remove nothing.")
        parser.add_argument(
            "--min-age", type=duration, help="Grace period for files: 0, 3600, 90s, 30m, 6h, 2d."
        )
        parser.add_argument("--force", action="store_true", help="Lift the safety cap against mass deletion.")
        parser.add_argument(
            "--time-limit", type=duration, help="Stop deleting after this long (status partial)."
        )
        parser.add_argument("--rate", type=positive_int, help="Delete at most N items per second.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the figures.")
        parser.add_argument(
            "--purge-quarantine",
            action="store_true",
            help="Purge every quarantined run now (for a full disk).",
        )
        parser.add_argument(
            "--claim-storage",
            action="store_true",
            help="Mark the media storage as this database's (after a move or a restore from backup); "
            "sweep nothing.",
        )
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="Accepted for symmetry; the command never prompts.",
        )
        parser.add_argument(
            "--trigger",
            choices=CleanupRun.Trigger.values,
            default=CleanupRun.Trigger.COMMAND,
            help=argparse.SUPPRESS,
        )
        parser.add_argument("--run-id", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        verbosity, as_json = options["verbosity"], options["json"]
        if options["claim_storage"]:
            return self.claim_storage()
        if options["min_age"] is None:
            try:
                options["min_age"] = conf.min_age()
            except ValueError as exc:
                raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        items = self.stderr if as_json else self.stdout
        freeze_loaded_objects()
        result = run_cleanup(
            dry_run=options["dry_run"],
            min_age=options["min_age"],
            force=options["force"],
            time_limit=options["time_limit"],
            rate=options["rate"],
            trigger=options["trigger"],
            run_id=options["run_id"],
            purge_quarantine=options["purge_quarantine"],
            on_item=(lambda kind, name: items.write(f"{kind}: {name}")) if verbosity >= 2 else None,
            on_progress=self.progress if verbosity >= 1 and not as_json and sys.stderr.isatty() else None,
            files_process=True,
        )
        if as_json:
            self.stdout.write(json.dumps(result.as_dict()))
        elif verbosity >= 1:
            self.stdout.write(summary(result))
        if result.exit_code:
            raise CommandError(
                f"cleanup {result.status}: {result.message or 'see the errors above'}",
                returncode=result.exit_code,
            )

    def claim_storage(self):
        try:
            self.stdout.write(claim_storage())
        except LockHeld as exc:
            raise CommandError(f"storage not claimed: {exc}", returncode=EXIT_CODES[Status.LOCKED]) from None
        except (StorageRefused, StorageUnavailable) as exc:
            raise CommandError(f"storage not claimed: {exc}", returncode=EXIT_CODES[Status.REFUSED]) from None

    def progress(self, result):
        self.stderr.write(
            f"\rlisted {result.files_checked:,} files, checked {result.records_checked:,} rows", ending=""
        )
