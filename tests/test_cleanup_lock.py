import time

import pytest
from django.db import connection

from media_app.cleanup.lock import ADVISORY_LOCK_KEY, LockLost, cleanup_lock, held_by, lock_file_path

pytestmark = pytest.mark.django_db(transaction=True)


def test_only_one_holder_at_a_time_and_released_after():
    with cleanup_lock("default") as first:
        with cleanup_lock("default") as second:
            assert (bool(first), bool(second)) == (True, False)
    with cleanup_lock("default") as again:
        assert again


def test_released_when_the_block_raises():
    with pytest.raises(RuntimeError), cleanup_lock("default"):
        raise RuntimeError
    with cleanup_lock("default") as acquired:
        assert acquired


def test_postgresql_uses_the_documented_advisory_key_on_a_connection_of_its_own():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite uses a file lock")
    with cleanup_lock("default") as acquired:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND pid <> pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = %s",
                [ADVISORY_LOCK_KEY],
            )
            assert cursor.fetchone()[0] == 1
    assert acquired
    assert ADVISORY_LOCK_KEY == 7882817126550170734


def test_sqlite_locks_a_file_next_to_the_database():
    assert lock_file_path("/srv/app/db.sqlite3") == "/srv/app/db.sqlite3.cleanup.lock"
    assert lock_file_path(":memory:").startswith("/")


def test_a_lock_whose_session_died_is_reported_lost():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: a file lock lives as long as its process")
    with cleanup_lock("default") as held:
        held.check()  # alive: nothing to say
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [held.session.connection.info.backend_pid])

        with pytest.raises(LockLost):
            held.check()


def test_a_file_lock_is_never_lost():
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    with cleanup_lock("default") as held:
        for _ in range(3):
            held.check()  # raises LockLost if it ever reports the lock gone
        with cleanup_lock("default") as second:
            assert held and not second, "the file lock still excludes a second run"


def test_another_session_sees_whether_the_lock_is_still_held():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: a file lock has no session")
    with cleanup_lock("default") as held:
        pid = held.session_pid()
        held_by("default", pid)  # held: nothing to say
        with pytest.raises(LockLost):
            held_by("default", pid + 100_000)  # no such holder
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(500):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if not cursor.fetchone()[0]:
                    break
                time.sleep(0.01)

        with pytest.raises(LockLost):
            held_by("default", pid)
