"""Durations as operators write them: ``0``, ``3600`` (seconds), ``90s``, ``30m``, ``6h``, ``2d``."""

import re
from datetime import timedelta

_DURATION = re.compile(r"\s*(\d+)\s*([smhd]?)\s*", re.IGNORECASE)
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text) -> timedelta:
    """Return the timedelta that ``text`` names; raise ValueError for anything else."""
    if isinstance(text, timedelta):
        return text
    match = _DURATION.fullmatch(str(text))
    if not match:
        raise ValueError(f"invalid duration {text!r}: use 0, seconds (3600) or 90s, 30m, 6h, 2d")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit.lower()]: int(amount)})
