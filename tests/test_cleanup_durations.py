from datetime import timedelta

import pytest

from media_app.cleanup.durations import parse_duration


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
