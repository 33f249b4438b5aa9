from datetime import timedelta

import pytest

from media_app.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("3600", timedelta(hours=1)),
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("2d", timedelta(days=2)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "-5", "1.5h", "2w", "h", "5 hours", "1h30m"])
def test_anything_else_is_refused_with_the_grammar(text):
    with pytest.raises(ValueError, match=r"90s, 30m, 6h, 2d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["3650d", "87600h", "5256000m", "315360000", timedelta(days=3650)])
def test_ten_years_is_the_longest_duration(text):
    assert parse_duration(text) == timedelta(days=3650)


@pytest.mark.parametrize(
    "text",
    ["3651d", "999999999d", "99999999999d", "9" * 5000, "0" * 20 + "3651d", timedelta(days=3651)],
)
def test_anything_longer_is_refused_with_the_limit(text):
    with pytest.raises(ValueError, match=r"at most 3650d \(ten years\)"):
        parse_duration(text)


def test_a_negative_timedelta_is_refused():
    with pytest.raises(ValueError, match="at most 3650d"):
        parse_duration(timedelta(seconds=-1))


def test_a_huge_input_is_refused_in_a_short_message():
    with pytest.raises(ValueError) as refused:
        parse_duration("9" * 100_000 + "x")

    assert len(str(refused.value)) < 200 and "100001 characters" in str(refused.value)
