import gc
import io
import json

import pytest
from django.core.management import CommandError, call_command, load_command_class

from media_app.cleanup.lock import cleanup_lock
from media_app.models import CleanupRun, Media
from tests import factories
from tests.test_cleanup_result import documented_json_keys

pytestmark = pytest.mark.django_db(transaction=True)


def cleanup(*args):
    """Call the command as a shell would; return (stdout, stderr, exit code)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("cleanup_media", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        err.write(str(exc))
        code = exc.returncode
    return out.getvalue(), err.getvalue(), code


@pytest.fixture
def drift(media_root):
    """One orphaned row and one stray file, both old enough to go."""
    owner = factories.tour()
    factories.media(factories.tour())
    orphan = factories.media(owner)
    factories.delete_behind_the_orms_back(owner)
    return orphan, factories.stray_file(media_root, "uploads/tours/stray.jpg")


def test_json_prints_exactly_one_object_with_the_contracted_keys(drift):
    out, _, code = cleanup("--json", "--no-input")

    report = json.loads(out)
    assert list(report) == documented_json_keys()
    assert (report["status"], report["orphaned_records"], report["orphaned_files"], code) == ("ok", 1, 1, 0)
    assert CleanupRun.objects.get(pk=report["run_id"]).trigger == "command"


def test_the_help_states_the_exit_codes():
    help_text = load_command_class("media_app", "cleanup_media").help

    assert help_text.endswith(
        "Exit codes: 0 ok or partial, 1 errors, refused or failed, 2 usage error, 75 locked."
    )


def test_json_with_verbosity_2_sends_item_lines_to_stderr(drift):
    out, err, _ = cleanup("--json", "-v", "2", "--dry-run")

    assert json.loads(out)["dry_run"] is True
    assert "orphaned file: uploads/tours/stray.jpg" in err
    assert drift[1].exists()


def test_verbosity_levels(drift):
    quiet, _, _ = cleanup("--dry-run", "-v", "0")
    summary, _, _ = cleanup("--dry-run")
    detailed, _, _ = cleanup("--dry-run", "-v", "2")

    assert quiet == ""
    assert "would remove 1 row and 2 files" in summary and "uploads/tours/stray.jpg" not in summary
    assert "orphaned file: uploads/tours/stray.jpg" in detailed


def test_options_reach_the_engine(drift, media_root):
    factories.stray_file(media_root, "uploads/tours/young.jpg", age_days=0)

    out, _, _ = cleanup("--json", "--min-age", "0", "--time-limit", "1h", "--rate", "1000", "--force")

    report = json.loads(out)
    assert report["orphaned_files"] == 2 and report["young_files"] == 0
    options = CleanupRun.objects.get(pk=report["run_id"]).options
    assert options == {
        "dry_run": False,
        "min_age": 0.0,
        "force": True,
        "time_limit": 3600.0,
        "rate": 1000,
        "purge_quarantine": False,
    }


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--min-age", "soon"], "--min-age"),
        (["--time-limit", "-5"], "--time-limit"),
        (["--rate", "0"], "--rate"),
        (["--bogus"], "--bogus"),
    ],
)
def test_usage_errors_name_the_option_and_record_nothing(args, named):
    with pytest.raises(CommandError, match=named):
        call_command("cleanup_media", *args)

    assert not CleanupRun.objects.exists()


def test_a_bad_grace_period_setting_is_a_usage_error(settings):
    settings.MEDIA_CLEANUP_MIN_AGE = "a while"

    _, err, code = cleanup()

    assert code == 2 and "MEDIA_CLEANUP_MIN_AGE" in err
    assert not CleanupRun.objects.exists()


def test_exit_codes_in_a_real_process(drift, manage_py, media_root):
    ok = manage_py("cleanup_media", "--json")
    usage = manage_py("cleanup_media", "--min-age", "later")
    for n in range(20):
        factories.stray_file(media_root, f"uploads/guides/{n}.jpg")
    Media.objects.all().delete()
    refused = manage_py("cleanup_media", "--json")

    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert (report["status"], report["deleted_records"], report["deleted_files"]) == ("ok", 1, 2)
    assert not drift[1].exists()
    assert usage.returncode == 2 and "--min-age" in usage.stderr
    assert refused.returncode == 1 and json.loads(refused.stdout)["status"] == "refused"
    assert "Traceback" not in ok.stderr + usage.stderr + refused.stderr


def test_a_second_process_while_the_lock_is_held_exits_75(drift, manage_py):
    with cleanup_lock("default") as acquired:
        assert acquired
        locked = manage_py("cleanup_media", "--json")

    assert locked.returncode == 75
    assert json.loads(locked.stdout)["status"] == "locked"
    assert drift[1].exists()


def test_errors_exit_1_and_each_failure_is_one_log_line(drift, settings, caplog):
    settings.MEDIA_CLEANUP_QUARANTINE_DAYS = 0
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "tests.storages.FailingDeleteStorage"}}

    out, err, code = cleanup("--json")

    assert code == 1
    report = json.loads(out)
    assert report["status"] == "errors" and report["error_count"] == 2
    failures = [r for r in caplog.records if r.levelname == "ERROR" and "Could not remove" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info is None for r in failures)
    assert drift[1].exists()


@pytest.mark.parametrize(
    "database_url, cause",
    [
        ("postgres://postgres@127.0.0.1:1/nowhere", "cannot reach the database: OperationalError"),
        ("sqlite:////nonexistent-folder/db.sqlite3", "cannot reach the lock: FileNotFoundError"),
    ],
)
def test_an_unreachable_database_still_prints_its_json_and_exits_1(manage_py, database_url, cause):
    done = manage_py("cleanup_media", "--json", env={"DATABASE_URL": database_url})

    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and cause in report["message"]
    assert "Traceback" not in done.stderr
    logged = [line for line in done.stderr.splitlines() if "Cleanup failed:" in line]
    assert len(logged) == 1 and report["message"] in logged[0]


@pytest.mark.parametrize("option", ["--min-age", "--time-limit"])
@pytest.mark.parametrize("value", ["999999999d", "99999999999d", "9" * 5000])
def test_a_duration_beyond_ten_years_is_a_usage_error(option, value):
    with pytest.raises(CommandError, match=rf"{option}: invalid duration .*: at most 3650d"):
        call_command("cleanup_media", option, value)

    assert not CleanupRun.objects.exists()


def test_a_duration_beyond_ten_years_exits_2_in_a_real_process(manage_py):
    result = manage_py("cleanup_media", "--min-age", "999999999d")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        "argument --min-age: invalid duration '999999999d': at most 3650d (ten years)"
    )
    assert "Traceback" not in result.stderr


@pytest.fixture
def frozen_after():
    """Undo what a sweep's process does to the garbage collector, so that this process collects again."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_command_leaves_what_it_loaded_out_of_the_collectors_passes(frozen_after, drift):
    assert gc.get_freeze_count() == 0

    cleanup("--dry-run")

    assert gc.get_freeze_count() > 0, "a million rows' tuples would set off full passes over Django's objects"
