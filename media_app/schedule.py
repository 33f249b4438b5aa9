"""Cron schedules meant in one time zone, written for cron in another (the host's).

Cron reads a crontab line in the host's zone (Debian's cron has no ``CRON_TZ``), while the
project's schedule is meant in ``TIME_ZONE``. :func:`to_host` rewrites the five fields for the
difference of the two zones' UTC offsets at one moment, so that the line fires at the same
instants, and refuses a schedule that no cron line can follow exactly. Nothing here reads
Django's settings: ``mediaproject/settings.py`` calls :func:`convert` while it loads.
"""

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SETTING = "MEDIA_CLEANUP_SCHEDULE"
HOST_SETTING = "MEDIA_CLEANUP_HOST_TIME_ZONE"
# The zone cron runs in. Not TZ or time.localtime(): Django sets TZ to TIME_ZONE in every
# process that loads the settings, and its children inherit it.
LOCALTIME = Path("/etc/localtime")
# The crontab line sets this variable for its command: the offsets it was converted with, so
# that the run converts the same way, and finds its job by the same hash, after they change.
WRITTEN_FOR = "MEDIA_CLEANUP_WRITTEN_FOR"
MINUTES_A_DAY = 24 * 60


class ScheduleError(ValueError):
    """The schedule cannot be written for cron with these offsets; the message is one line."""


class InvalidSchedule(ScheduleError):
    """A setting is not valid whatever the offsets: bad cron syntax or an unknown zone."""


@dataclass(frozen=True)
class FieldSpec:
    """One of the five cron fields: its name, its range and the names it accepts (from ``low``)."""

    name: str
    low: int
    high: int
    names: tuple = ()


MINUTE = FieldSpec("minute", 0, 59)
HOUR = FieldSpec("hour", 0, 23)
DAY_OF_MONTH = FieldSpec("day-of-month", 1, 31)
MONTH = FieldSpec("month", 1, 12, tuple("jan feb mar apr may jun jul aug sep oct nov dec".split()))
# 7 is Sunday too, as in cron.
DAY_OF_WEEK = FieldSpec("day-of-week", 0, 7, tuple("sun mon tue wed thu fri sat".split()))
SPECS = (MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK)
ALL_DAYS = frozenset(range(1, 32))
ALL_MONTHS = frozenset(range(1, 13))
ALL_WEEKDAYS = frozenset(range(7))

_ITEM = re.compile(r"(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\w+))?")
_OFFSETS = re.compile(r"TIME_ZONE([+-]\d\d:\d\d),host([+-]\d\d:\d\d)")


@dataclass(frozen=True)
class Field:
    """A parsed cron field: its text, the values it selects, and whether it begins with ``*``."""

    text: str
    values: frozenset
    # Cron fires on days matching both day fields when either begins with "*", else on either.
    star: bool


def parse(schedule):
    """Return the five fields of a cron schedule; raise InvalidSchedule naming what is wrong."""
    texts = schedule.split()
    if len(texts) != 5:
        raise InvalidSchedule(
            f"{SETTING}={schedule!r} is not five cron fields, e.g. '0 3 * * *' "
            "(django-crontab cannot find or remove a line written otherwise)."
        )
    return tuple(_parse_field(schedule, text, spec) for text, spec in zip(texts, SPECS, strict=True))


def _parse_field(schedule, text, spec):
    values = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            raise _syntax_error(schedule, text, spec)
        star, first, last, step = match.groups()
        if star:
            low, high = spec.low, spec.high
        else:
            low = _value(schedule, first, spec)
            high = _value(schedule, last, spec) if last else low
            # Cron takes "5/10" for a plain 5 and ignores the rest: refuse it rather than guess.
            if (step and not last) or high < low:
                raise _syntax_error(schedule, text, spec)
        by = _number(step) if step else 1
        if not by:
            raise _syntax_error(schedule, text, spec)
        values.update(range(low, high + 1, by))
    if spec is DAY_OF_WEEK and 7 in values:
        values = (values - {7}) | {0}
    return Field(text, frozenset(values), text.startswith("*"))


def _value(schedule, token, spec):
    number = _number(token)
    if number is None and token.lower() in spec.names:
        number = spec.low + spec.names.index(token.lower())
    if number is None or not spec.low <= number <= spec.high:
        raise InvalidSchedule(
            f"{SETTING}={schedule!r}: {token!r} is not a valid {spec.name} ({spec.low}-{spec.high}"
            f"{', or ' + spec.names[0] + '-' + spec.names[-1] if spec.names else ''})."
        )
    return number


def _number(token):
    return int(token) if token.isascii() and token.isdigit() else None


def _syntax_error(schedule, text, spec):
    return InvalidSchedule(
        f"{SETTING}={schedule!r}: the {spec.name} field {text!r} is not cron syntax "
        "(numbers, *, lists 1,2, ranges 1-5, steps */15 or 1-10/2)."
    )


def utc_offset(offset):
    """Return an offset as ``+04:00`` or ``-03:30``."""
    minutes = offset // timedelta(minutes=1)
    hours, minutes = divmod(abs(minutes), 60)
    return f"{'-' if offset < timedelta(0) else '+'}{hours:02}:{minutes:02}"


def _parse_offset(text):
    hours, minutes = text[1:].split(":")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return -offset if text.startswith("-") else offset


@dataclass(frozen=True)
class Offsets:
    """The UTC offsets of TIME_ZONE (``schedule``) and of the host's zone at one moment."""

    schedule: timedelta
    host: timedelta

    @classmethod
    def at(cls, schedule_zone, host_zone, moment):
        """Return the two zones' offsets at ``moment`` (an aware datetime)."""
        return cls(moment.astimezone(schedule_zone).utcoffset(), moment.astimezone(host_zone).utcoffset())

    @classmethod
    def parse(cls, text):
        """Return the offsets that ``str(offsets)`` wrote; raise ScheduleError for anything else."""
        match = _OFFSETS.fullmatch(text)
        if not match:
            raise ScheduleError(f"{WRITTEN_FOR}={text!r} is not as `crontab add` writes it.")
        return cls(*map(_parse_offset, match.groups()))

    def __str__(self):
        return f"TIME_ZONE{utc_offset(self.schedule)},host{utc_offset(self.host)}"


def to_host(schedule, offsets):
    """Return the fields that fire at the instants ``schedule`` names, for cron at ``offsets.host``.

    ``schedule`` is meant at ``offsets.schedule``; equal offsets return its text unchanged. Raise
    InvalidSchedule for bad syntax, ScheduleError when no cron line fires at exactly those instants.
    """
    minute, hour, day, month, weekday = parse(schedule)
    shift = offsets.host - offsets.schedule
    if not shift:
        return schedule

    def refuse(reason):
        return ScheduleError(
            f"{SETTING}={schedule!r} in TIME_ZONE (UTC{utc_offset(offsets.schedule)}) cannot be written "
            f"exactly for cron on this host (UTC{utc_offset(offsets.host)}): {reason}."
        )

    if shift % timedelta(minutes=1):
        raise refuse("the offsets differ by a fraction of a minute")
    moved = {60 * h + m + shift // timedelta(minutes=1) for h in hour.values for m in minute.values}
    times = {time % MINUTES_A_DAY for time in moved}
    hours, minutes = {time // 60 for time in times}, {time % 60 for time in times}
    if len(hours) * len(minutes) != len(times):
        raise refuse(
            f"moved by {utc_offset(shift)}, its times are no longer each listed minute of each listed hour"
        )
    day_texts = (day.text, month.text, weekday.text)
    if not _every_day(day, month, weekday):
        days = {time // MINUTES_A_DAY for time in moved}
        if len(days) > 1:
            raise refuse(
                f"moved by {utc_offset(shift)}, some of its times change day and others do not, "
                "while its day fields restrict the days"
            )
        (days_moved,) = days
        if days_moved and (day.values != ALL_DAYS or month.values != ALL_MONTHS):
            raise refuse(
                f"moved by {utc_offset(shift)}, its times change day, and a day-of-month or month "
                "restriction cannot change day with them"
            )
        if days_moved:
            # The weekdays alone restrict the days here. "*" keeps cron requiring both day fields,
            # as the original did: "1-31" with a listed weekday would fire on every day.
            weekdays = {(value + days_moved) % 7 for value in weekday.values}
            day_texts = ("*", month.text, _text(weekday, weekdays, ALL_WEEKDAYS))
    all_minutes, all_hours = frozenset(range(60)), frozenset(range(24))
    return " ".join((_text(minute, minutes, all_minutes), _text(hour, hours, all_hours), *day_texts))


def _every_day(day, month, weekday):
    if month.values != ALL_MONTHS:
        return False
    if day.star or weekday.star:
        return day.values == ALL_DAYS and weekday.values == ALL_WEEKDAYS
    return day.values == ALL_DAYS or weekday.values == ALL_WEEKDAYS


def _text(field, values, every):
    """Return the field's own text when it selects ``values`` already, else a list of ranges."""
    if values == field.values:
        return field.text
    if values == every:
        return "*"
    runs = []
    for value in sorted(values):
        if runs and runs[-1][1] == value - 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(
        str(low) if low == high else f"{low},{high}" if high == low + 1 else f"{low}-{high}"
        for low, high in runs
    )


def zone(name, setting):
    """Return the IANA zone ``name``; raise InvalidSchedule naming ``setting`` when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(
            f"{setting}={name!r} is not an IANA time zone name, e.g. Asia/Tbilisi or Etc/UTC."
        ) from None


def host_zone(name="", localtime=LOCALTIME):
    """Return the zone cron reads the crontab in: ``name``, else the one ``localtime`` holds, else UTC."""
    if name:
        return zone(name, HOST_SETTING)
    try:
        with open(localtime, "rb") as handle:
            return ZoneInfo.from_file(handle, key=_zone_name(localtime))
    except FileNotFoundError:
        return ZoneInfo("UTC")
    except (OSError, ValueError) as exc:
        raise InvalidSchedule(
            f"{localtime} cannot be read as a time zone ({exc}): set {HOST_SETTING}, e.g. Etc/UTC."
        ) from None


def _zone_name(localtime):
    """Return the zone's name from the link's target (…/zoneinfo/Europe/Berlin), else the file's path."""
    target = os.path.realpath(localtime)
    return target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else str(localtime)


@dataclass(frozen=True)
class Conversion:
    """A schedule meant in TIME_ZONE, and the same schedule as cron on the host must read it."""

    schedule: str
    schedule_zone: str
    host_zone: str
    offsets: Offsets
    host_schedule: str

    @property
    def line_prefix(self):
        """Return the variable assignment that records the offsets on the crontab line."""
        return f"{WRITTEN_FOR}={self.offsets}"

    def __str__(self):
        return (
            f"{self.schedule} in {self.schedule_zone} (UTC{utc_offset(self.offsets.schedule)}) is "
            f"{self.host_schedule} on this host ({self.host_zone}, UTC{utc_offset(self.offsets.host)})"
        )


def convert(schedule, schedule_zone, host_zone_name, moment: datetime, written_for=""):
    """Return ``schedule`` converted with the offsets at ``moment``, or with those ``written_for`` records.

    Raise InvalidSchedule for a setting that is never valid, ScheduleError when these offsets
    leave no exact cron line.
    """
    schedule_tz = zone(schedule_zone, "TIME_ZONE")
    host_tz = host_zone(host_zone_name)
    offsets = Offsets.parse(written_for) if written_for else Offsets.at(schedule_tz, host_tz, moment)
    return Conversion(schedule, schedule_zone, host_tz.key, offsets, to_host(schedule, offsets))
