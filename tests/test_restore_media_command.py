import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)


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
