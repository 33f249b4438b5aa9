"""Durations as operators write them: ``0``, ``3600`` (seconds), ``90s``, ``30m``, ``6h``, ``2d``."""

import re
from datetime import timedelta

_DURATION = re.compile(r"\s*(\d+)\s*([smhd]?)\s*", re.IGNORECASE)
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
GRAMMAR = "0, seconds (3600) or 90s, 30m, 6h, 2d"
# Long enough for any grace period or alert; short enough that no arithmetic on it overflows.
MAX_DURATION = timedelta(days=3650)
LIMIT = f"at most {MAX_DURATION.days}d (ten years)"
# Ten years is a nine-digit number of seconds: an amount with more digits is too long in any
# unit, and never reaches int() or timedelta(), which fail on millions of digits or overflow.
_MAX_DIGITS = len(str(int(MAX_DURATION.total_seconds())))
_SHOWN_CHARACTERS = 40


def parse_duration(text) -> timedelta:
    """Return the timedelta that ``text`` names, up to ten years; raise ValueError for anything else."""
    if isinstance(text, timedelta):
        duration = text
    else:
        match = _DURATION.fullmatch(str(text))
        if not match:
            raise ValueError(f"invalid duration {_shown(text)}: use {GRAMMAR}")
        amount, unit = match.groups()
        if len(amount.lstrip("0")) > _MAX_DIGITS:
            raise ValueError(f"invalid duration {_shown(text)}: {LIMIT}")
        duration = timedelta(**{_UNITS[unit.lower()]: int(amount)})
    if not timedelta(0) <= duration <= MAX_DURATION:
        raise ValueError(f"invalid duration {_shown(text)}: {LIMIT}")
    return duration


def _shown(text):
    """Return ``text`` quoted for a message, cut short when it is long."""
    text = str(text)
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:_SHOWN_CHARACTERS]!r}... ({len(text)} characters)"
