"""django-crontab's ``crontab`` command, for a schedule meant in ``TIME_ZONE``.

It takes the place of django-crontab's own (``media_app`` comes first in ``INSTALLED_APPS``)
and keeps its subcommands. ``add`` says how ``MEDIA_CLEANUP_SCHEDULE`` was converted, refuses a
schedule that cannot be converted exactly and makes the log's folder; ``add``, ``remove`` and
``show`` name lines whose job no longer exists instead of stopping on them; ``run`` says in one
line when the hash names no job.
"""

from django.core.management.base import BaseCommand, CommandError
from django_crontab.crontab import Crontab

from media_app import conf, cron, schedule


class ProjectCrontab(Crontab):
    """Edit the crontab as django-crontab does, naming lines without requiring their job to exist."""

    def remove_jobs(self):
        """Take this project's lines out of the buffer."""
        for line in cron.project_lines(self.crontab_lines):
            self.crontab_lines.remove(line)
            if self.verbosity >= 1:
                print(f"removing cronjob: {describe(line)}")

    def show_jobs(self):
        """Print this project's lines with their jobs."""
        print("Currently active jobs in crontab:")
        if self.verbosity >= 1:
            for line in cron.project_lines(self.crontab_lines):
                print(describe(line))


def describe(line):
    """Return a line's hash and its job, or say that no job of ``CRONJOBS`` has that hash now."""
    job_hash = cron.line_hash(line)
    job = cron.job_for_hash(job_hash)
    if job is None:
        return f"({job_hash}) -> no such job in CRONJOBS now: run `python manage.py crontab add`"
    return f"({job_hash}) -> {job}"


class Command(BaseCommand):
    help = (
        "Add, show or remove the jobs of CRONJOBS in the crontab, or run one by its hash. "
        "MEDIA_CLEANUP_SCHEDULE is meant in TIME_ZONE and written converted to the host's zone."
    )

    def add_arguments(self, parser):
        parser.add_argument("subcommand", choices=["add", "show", "remove", "run"])
        parser.add_argument("jobhash", nargs="?")

    def handle(self, *args, subcommand, jobhash, **options):
        if subcommand == "run":
            self.run_job(jobhash)
            return
        if subcommand != "remove":
            self.write_conversion(refuse=subcommand == "add", verbosity=options["verbosity"])
        if subcommand == "add":
            make_log_folder()
        with ProjectCrontab(readonly=subcommand == "show", **options) as crontab:
            if subcommand == "show":
                crontab.show_jobs()
                return
            crontab.remove_jobs()
            if subcommand == "add":
                crontab.add_jobs()

    def write_conversion(self, *, refuse, verbosity):
        """Say how the schedule reads on this host; refuse (exit 2) or warn when it cannot be converted."""
        try:
            conversion = cron.host_schedule()
        except schedule.ScheduleError as exc:
            if refuse:
                raise CommandError(str(exc), returncode=2) from None
            self.stderr.write(str(exc))
            return
        if verbosity >= 1:
            self.stdout.write(str(conversion))

    def run_job(self, job_hash):
        """Run the job a crontab line names, or say in one line (exit 1) that no job has its hash now."""
        if not job_hash:
            raise CommandError(
                "`crontab run` needs the hash of a job, as its crontab line gives it.", returncode=2
            )
        if cron.job_for_hash(job_hash) is None:
            raise CommandError(
                f"No job with hash {job_hash} in CRONJOBS: the crontab line was written for another "
                "MEDIA_CLEANUP_SCHEDULE or TIME_ZONE; run `python manage.py crontab add` again.",
                returncode=1,
            )
        Crontab().run_job(job_hash)


def make_log_folder():
    """Create the log's folder: the shell opens the log for the line before the job starts."""
    folder = conf.log_file().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"The folder of MEDIA_CLEANUP_LOG_FILE, {folder}, cannot be created ({exc.strerror}): "
            "the crontab line could not start the job. Create it, or set MEDIA_CLEANUP_LOG_FILE.",
            returncode=2,
        ) from None
