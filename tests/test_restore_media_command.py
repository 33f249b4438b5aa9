import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.utils import timezone

from media_app.cleanup.backends import backend_for
from media_app.models import DatabaseIdentity

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_help_states_the_exit_codes():
    help_text = load_command_class("media_app", "restore_media").help

    assert help_text.endswith(
        "Exit codes: 0 ok, 1 partial, failed or refused, 2 usage error, unknown or purged, 75 locked."
    )


@pytest.mark.parametrize("args", [["not-a-uuid"], ["--dry-run", "x"], ["0b7c2d0e-..."]])
def test_a_run_id_that_is_no_uuid_is_a_usage_error(args):
    with pytest.raises(CommandError) as raised:
        call_command("restore_media", *args)

    assert raised.value.returncode == 2
    assert "is not a run id" in str(raised.value) and "\n" not in str(raised.value)


def test_a_usage_error_in_a_real_process_is_one_line_and_exit_2(manage_py):
    done = manage_py("restore_media", "not-a-uuid")

    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line == (
        "CommandError: 'not-a-uuid' is not a run id: "
        "give the run_id that cleanup_media --json printed (a UUID)"
    )


def test_list_shows_the_readable_runs_and_warns_about_the_others(quarantine_root):
    run_id = str(uuid.uuid4())
    backend_for().quarantine().begin(run_id, timezone.now(), database=DatabaseIdentity.current("default"))
    corrupt = quarantine_root / str(uuid.uuid4()) / "meta.json"
    corrupt.parent.mkdir()
    corrupt.write_text("{")
    (quarantine_root / "notes.txt").write_text("")
    out, err = io.StringIO(), io.StringIO()

    call_command("restore_media", "--list", "--json", stdout=out, stderr=err)

    assert [run["run_id"] for run in json.loads(out.getvalue())] == [run_id]
    warnings = sorted(err.getvalue().splitlines())
    assert len(warnings) == 2
    assert warnings[0].startswith(f"warning: {corrupt}: is not valid JSON")
    assert warnings[1] == f"warning: {quarantine_root / 'notes.txt'}: not a run folder " + (
        "(the quarantine holds only folders named by a run id); remove it"
    )


def test_list_of_a_misconfigured_quarantine_is_one_line(media_root, settings):
    settings.MEDIA_CLEANUP_QUARANTINE_ROOT = str(media_root / "quarantine")

    with pytest.raises(CommandError) as raised:
        call_command("restore_media", "--list")

    assert raised.value.returncode == 1
    assert str(raised.value).startswith("cannot list the quarantine: the quarantine ")
    assert "inside MEDIA_ROOT" in str(raised.value)
