"""A run's options: resolved once, and what the run history keeps of them. No database."""

import dataclasses
import uuid
from datetime import timedelta

import pytest

from media_app.cleanup.options import CleanupOptions


def test_the_history_keeps_the_options_a_person_chose_durations_in_seconds():
    options = CleanupOptions(min_age="6h", time_limit=timedelta(minutes=5), rate=20, force=True)

    assert options.recorded() == {
        "dry_run": False,
        "min_age": 21600.0,
        "force": True,
        "time_limit": 300.0,
        "rate": 20,
        "purge_quarantine": False,
    }


def test_a_selection_is_kept_as_its_size_and_its_ids_as_text():
    ids = [uuid.uuid4(), uuid.uuid4()]

    options = CleanupOptions(media_ids=ids, min_age=0)

    assert options.recorded()["media_ids"] == 2
    assert options.media_ids == tuple(str(pk) for pk in ids)


def test_the_grace_period_defaults_to_the_setting_and_a_bad_one_is_refused(settings):
    settings.MEDIA_CLEANUP_MIN_AGE = "3d"
    assert CleanupOptions().min_age == timedelta(days=3)

    settings.MEDIA_CLEANUP_MIN_AGE = "a while"
    with pytest.raises(ValueError, match="MEDIA_CLEANUP_MIN_AGE"):
        CleanupOptions()


@pytest.mark.parametrize("option", ["min_age", "time_limit"])
def test_a_duration_that_does_not_parse_is_refused(option):
    with pytest.raises(ValueError, match="invalid duration 'soon'"):
        CleanupOptions(**{option: "soon"})


def test_each_run_gets_an_id_unless_given_one():
    given = uuid.uuid4()

    first, second = CleanupOptions(min_age=0), CleanupOptions(min_age=0)

    assert first.run_id != second.run_id and uuid.UUID(first.run_id)
    assert CleanupOptions(min_age=0, run_id=given).run_id == str(given)


def test_options_stay_as_resolved_for_the_whole_run():
    options = CleanupOptions(min_age=0)

    with pytest.raises(dataclasses.FrozenInstanceError):
        options.dry_run = True
