"""The safety cap as a function of the counts: no database."""

import pytest

from media_app.cleanup.cap import over_cap


def excess(files=0, files_listed=100, rows=0, rows_checked=100, ratio=0.5, floor=10):
    return over_cap(
        files=files, files_listed=files_listed, rows=rows, rows_checked=rows_checked, ratio=ratio, floor=floor
    )


def test_a_run_within_the_share_or_the_floor_passes():
    assert excess(files=50, rows=50) == "", "half is not more than half"
    assert excess(files=10, files_listed=10, rows=10, rows_checked=10) == "", "10 is not more than the floor"


def test_more_than_the_share_and_the_floor_of_files_is_over():
    assert (
        excess(files=20, files_listed=20)
        == "20 of 20 files under uploads/ (more than 50% and more than 10 items)"
    )


def test_rows_count_on_their_own():
    assert excess(rows=51) == "51 of 100 media rows (more than 50% and more than 10 items)"


def test_both_kinds_over_are_both_named():
    assert excess(files=60, rows=70, ratio=0.25, floor=3) == (
        "60 of 100 files under uploads/ and 70 of 100 media rows (more than 25% and more than 3 items)"
    )


@pytest.mark.parametrize("ratio", [0, 1])
def test_the_ends_of_the_share(ratio):
    assert bool(excess(files=11, ratio=ratio)) == (ratio == 0)
