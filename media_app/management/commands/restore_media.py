import json

from django.core.management.base import BaseCommand, CommandError

from media_app.cleanup.backends.base import QuarantineError, StorageUnavailable
from media_app.cleanup.exit_codes import USAGE_ERROR, described
from media_app.cleanup.restore import EXIT_CODES, RestoreStatus, parse_run_id, quarantined_runs, restore_run


class Command(BaseCommand):
    help = (
        "Take a cleanup run back: put its quarantined files back and re-create its rows whose owner "
        f"exists again. Exit codes: {described(EXIT_CODES)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", nargs="?", help="The run_id that `cleanup_media --json` printed.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Tell what would be restored; change nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object (a list with --list).")
        parser.add_argument("--list", action="store_true", help="List the runs that can be restored.")

    def handle(self, *args, **options):
        if options["list"]:
            return self.list_runs(options["json"])
        if not options["run_id"]:
            raise CommandError("give a RUN_ID, or --list to see the restorable runs", returncode=USAGE_ERROR)
        try:
            run_id = parse_run_id(options["run_id"])
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_CODES[RestoreStatus.UNKNOWN]) from None
        result = restore_run(run_id, dry_run=options["dry_run"])
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        elif options["verbosity"] >= 1:
            verb = "would restore" if result.dry_run else "restored"
            self.stdout.write(
                f"{result.status}: {verb} {result.restored_files} files and {result.restored_records} rows; "
                f"skipped {result.skipped}. {result.message}".strip()
            )
            for item in result.skipped_items:
                self.stdout.write(f"  skipped {item['kind']} {item['name']}: {item['reason']}")
        if result.exit_code:
            raise CommandError(
                f"restore {result.status}: {result.message or 'see the skipped items'}",
                returncode=result.exit_code,
            )

    def list_runs(self, as_json):
        try:
            runs, problems = quarantined_runs()
        except (QuarantineError, StorageUnavailable, OSError) as exc:
            raise CommandError(f"cannot list the quarantine: {exc}") from None
        for problem in problems:
            self.stderr.write(f"warning: {problem}")
        if as_json:
            self.stdout.write(json.dumps(runs))
            return
        if not runs:
            self.stdout.write("No quarantined runs.")
        for run in runs:
            contents = f"{run['files']} files, {run['records']} rows, {run['bytes']} bytes"
            self.stdout.write(f"{run['run_id']}  {run['created']}  {contents}")
