import os
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_app import schedule
from media_app.schedule import InvalidSchedule, Offsets, ScheduleError, convert, host_zone, to_host
from tests.test_settings import manage, run_settings

TBILISI, UTC_HOST = timedelta(hours=4), timedelta(0)
WINTER, SUMMER = datetime(2027, 1, 15, 12, tzinfo=UTC), datetime(2027, 7, 15, 12, tzinfo=UTC)


def offsets(schedule_hours, host_hours):
    return Offsets(timedelta(hours=schedule_hours), timedelta(hours=host_hours))


# -- the conversion, by example ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("meant", "written"),
    [
        ("0 3 * * *", "0 23 * * *"),
        ("0 2 * * 0", "0 22 * * 6"),  # the weekday moves with the hour, and wraps
        ("0 2 * * 7", "0 22 * * 6"),  # 7 is Sunday too
        ("0 2 * * sun", "0 22 * * 6"),
        ("30 1 * * mon-fri", "30 21 * * 0-4"),
        ("0 1,22 * * *", "0 18,21 * * *"),  # every day: the hours may fall on two days
        ("*/15 */6 * * *", "*/15 2,8,14,20 * * *"),
        ("0 5 1 jan *", "0 1 1 jan *"),  # the same day on the host: the day fields stay
        ("0 12 1-31 * */2", "0 8 1-31 * */2"),
        ("0 2 1-31 * */2", "0 22 * * 1,3,5,6"),  # "*": cron must still require both day fields
        ("* * * * *", "* * * * *"),
    ],
)
def test_tbilisi_schedules_for_a_utc_host(meant, written):
    assert to_host(meant, Offsets(TBILISI, UTC_HOST)) == written


@pytest.mark.parametrize(
    ("meant", "pair", "written"),
    [
        ("0 22 * * 6", (0, 4), "0 2 * * 0"),  # a host ahead: the next day, Saturday wraps to Sunday
        ("0 0 * * 1", (-12, 14), "0 2 * * 2"),  # 26 hours apart
        ("0 3 * * *", (4, 5.5), "30 4 * * *"),  # Asia/Kolkata's half hour
        ("*/15 * * * *", (4, 5.5), "*/15 * * * *"),
        ("10,20 3 * * *", (4, 5.5), "40,50 4 * * *"),
    ],
)
def test_other_zone_pairs(meant, pair, written):
    assert to_host(meant, offsets(*pair)) == written


@pytest.mark.parametrize("meant", ["0 3 * * *", "0  3 * *   MON", "*/7 1-5/2 1,15 jan-mar sun"])
def test_equal_offsets_leave_the_schedule_as_it_was_written(meant):
    assert to_host(meant, offsets(4, 4)) == meant


@pytest.mark.parametrize(
    ("meant", "pair", "reason"),
    [
        ("0 1,22 * * 1", (4, 0), "some of its times change day and others do not"),
        ("0 2 1 * *", (4, 0), "a day-of-month or month restriction cannot change day"),
        ("0 2 * jan *", (4, 0), "a day-of-month or month restriction cannot change day"),
        ("0 2 1 * mon", (4, 0), "a day-of-month or month restriction cannot change day"),
        ("0,45 3 * * *", (4, 5.5), "no longer each listed minute of each listed hour"),
    ],
)
def test_a_schedule_that_cannot_be_converted_exactly_is_refused_in_one_line(meant, pair, reason):
    with pytest.raises(ScheduleError) as refused:
        to_host(meant, offsets(*pair))

    message = str(refused.value)
    assert not isinstance(refused.value, InvalidSchedule)
    assert reason in message and f"MEDIA_CLEANUP_SCHEDULE={meant!r}" in message and "\n" not in message


@pytest.mark.parametrize(
    ("meant", "named"),
    [
        ("@daily", "is not five cron fields"),
        ("0 3 * *", "is not five cron fields"),
        ("61 * * * *", "'61' is not a valid minute (0-59)"),
        ("* 24 * * *", "'24' is not a valid hour"),
        ("* * 0 * *", "'0' is not a valid day-of-month"),
        ("* * * 13 *", "'13' is not a valid month"),
        ("* * * * 8", "'8' is not a valid day-of-week (0-7, or sun-sat)"),
        ("* * * foo *", "'foo' is not a valid month (1-12, or jan-dec)"),
        ("5/10 * * * *", "the minute field '5/10' is not cron syntax"),
        ("5-1 * * * *", "the minute field '5-1' is not cron syntax"),
        ("*/0 * * * *", "the minute field '*/0' is not cron syntax"),
        ("1,,2 * * * *", "the minute field '1,,2' is not cron syntax"),
        ("* * * * ٣", "'٣' is not a valid day-of-week"),
    ],
)
def test_bad_syntax_is_invalid_whatever_the_offsets(meant, named):
    for pair in [(4, 4), (4, 0)]:
        with pytest.raises(InvalidSchedule, match=re.escape(named)):
            to_host(meant, offsets(*pair))


# -- the conversion, for every schedule: the converted line fires at the same instants ----------

ZONES = [
    "UTC",
    "Asia/Tbilisi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",
    "Australia/Adelaide",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
]
RANGES = {0: (0, 59, ()), 1: (0, 23, ()), 2: (1, 31, ()), 3: (1, 12, schedule.MONTH.names)}
RANGES[4] = (0, 7, schedule.DAY_OF_WEEK.names)


@st.composite
def cron_fields(draw, position):
    """Draw one cron field's text, with every form cron accepts."""
    low, high, names = RANGES[position]
    number = st.integers(low, high)

    def token(value):
        if names and value - low < len(names) and draw(st.booleans()):
            name = names[value - low]
            return draw(st.sampled_from([name, name.upper(), name.title()]))
        return str(value)

    items = []
    for _ in range(draw(st.integers(1, 3))):
        form = draw(st.sampled_from(["a", "a-b", "*/n", "a-b/n", "*"]))
        first, last = sorted([draw(number), draw(number)])
        step = draw(st.integers(1, min(12, high - low + 1)))
        items.append(
            {
                "*": "*",
                "*/n": f"*/{step}",
                "a": token(first),
                "a-b": f"{token(first)}-{token(last)}",
                "a-b/n": f"{token(first)}-{token(last)}/{step}",
            }[form]
        )
    # Plain "*" and single numbers are the common case, and the one where times change day; the
    # weekdays then move only when the day of month and the month are "*".
    stars = [st.just("*")] * (3 if position in (2, 3) else 1)
    return draw(st.one_of(*stars, number.map(str), st.just(",".join(items))))


schedules = st.tuples(*(cron_fields(position) for position in range(5))).map(" ".join)
# Weekly schedules at one hour: their weekdays move when the hour changes day. Every day of the
# month written "1-31" makes cron take either day field instead of both, unless one begins with "*".
weekly = st.tuples(
    cron_fields(0), st.integers(0, 23).map(str), st.sampled_from(["*", "1-31"]), cron_fields(4)
).map(lambda fields: "{} {} {} * {}".format(*fields))


def field_values(text, position):
    """Return what one field selects, and whether it begins with "*" (cron's own reading)."""
    low, high, names = RANGES[position]

    def value(token):
        return int(token) if token.isdigit() else low + names.index(token.lower())

    values = set()
    for item in text.split(","):
        spread, _, step = item.partition("/")
        first, _, last = spread.partition("-")
        bounds = (low, high) if spread == "*" else (value(first), value(last or first))
        values |= set(range(bounds[0], bounds[1] + 1, int(step or 1)))
    if position == 4:
        values = {day % 7 for day in values}
    return values, text.startswith("*")


def firing_minutes(line, offset, first_day, last_day):
    """Return the instants (minutes since 0001-01-01 UTC) at which cron, at ``offset``, fires ``line``."""
    (minutes, _), (hours, _), (days, day_star), (months, _), (weekdays, weekday_star) = (
        field_values(text, position) for position, text in enumerate(line.split())
    )
    fired = set()
    for ordinal in range(first_day.toordinal(), last_day.toordinal() + 1):
        day = date.fromordinal(ordinal)
        by_day, by_weekday = day.day in days, day.isoweekday() % 7 in weekdays
        matches = by_day and by_weekday if day_star or weekday_star else by_day or by_weekday
        if day.month in months and matches:
            start = ordinal * 1440 - offset // timedelta(minutes=1)
            fired.update(start + 60 * hour + minute for hour in hours for minute in minutes)
    return fired


@settings(max_examples=500)
@given(
    meant=st.one_of(schedules, weekly),
    zones=st.lists(st.sampled_from(ZONES), min_size=2, max_size=2, unique=True),
    moment=st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31), timezones=st.just(UTC)),
)
def test_a_converted_schedule_fires_at_the_same_instants_or_is_refused(meant, zones, moment):
    at = Offsets.at(*map(ZoneInfo, zones), moment)
    try:
        written = to_host(meant, at)
    except ScheduleError:
        return
    first, last = moment.date() - timedelta(days=20), moment.date() + timedelta(days=20)
    inside = range((first.toordinal() + 2) * 1440, (last.toordinal() - 1) * 1440)

    expected = {t for t in firing_minutes(meant, at.schedule, first, last) if t in inside}
    actual = {t for t in firing_minutes(written, at.host, first, last) if t in inside}

    assert actual == expected, f"{meant!r} at {at} was written {written!r}"


# -- the zones ---------------------------------------------------------------------------------


def test_the_host_zone_is_what_etc_localtime_names_whatever_tz_says(tmp_path, monkeypatch):
    localtime = tmp_path / "localtime"
    localtime.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    monkeypatch.setenv("TZ", "Asia/Tbilisi")  # as Django sets it from TIME_ZONE

    zone = host_zone("", localtime=localtime)

    assert zone.key == "Europe/Berlin"
    assert Offsets.at(ZoneInfo("Asia/Tbilisi"), zone, WINTER).host == timedelta(hours=1)


def test_without_etc_localtime_the_host_is_utc(tmp_path):
    assert host_zone("", localtime=tmp_path / "missing").utcoffset(SUMMER) == timedelta(0)


def test_a_named_host_zone_wins_and_a_bad_one_is_invalid_by_name():
    assert host_zone("Asia/Kolkata").key == "Asia/Kolkata"

    for name in ["Mars/Olympus", "Europe", "/etc/passwd"]:
        with pytest.raises(InvalidSchedule, match=f"MEDIA_CLEANUP_HOST_TIME_ZONE={name!r} is not an IANA"):
            host_zone(name)


def test_daylight_saving_changes_the_line_and_its_recorded_offsets():
    summer = convert("0 3 * * *", "Asia/Tbilisi", "Europe/Berlin", SUMMER)
    winter = convert("0 3 * * *", "Asia/Tbilisi", "Europe/Berlin", WINTER)

    assert (summer.host_schedule, winter.host_schedule) == ("0 1 * * *", "0 0 * * *")
    assert summer.line_prefix == "MEDIA_CLEANUP_WRITTEN_FOR=TIME_ZONE+04:00,host+02:00"
    assert (
        str(winter)
        == "0 3 * * * in Asia/Tbilisi (UTC+04:00) is 0 0 * * * on this host (Europe/Berlin, UTC+01:00)"
    )


def test_the_recorded_offsets_convert_as_on_the_day_the_line_was_written():
    summer = convert("0 3 * * *", "Asia/Tbilisi", "Europe/Berlin", SUMMER)

    in_winter = convert("0 3 * * *", "Asia/Tbilisi", "Europe/Berlin", WINTER, written_for=str(summer.offsets))

    assert in_winter == summer
    assert Offsets.parse("TIME_ZONE-03:30,host+05:45") == Offsets(
        -timedelta(hours=3, minutes=30), timedelta(hours=5, minutes=45)
    )
    with pytest.raises(
        ScheduleError, match="MEDIA_CLEANUP_WRITTEN_FOR='host' is not as `crontab add` writes it"
    ):
        Offsets.parse("host")


def test_an_unknown_time_zone_setting_is_invalid_by_name():
    with pytest.raises(InvalidSchedule, match="TIME_ZONE='Europe/Tbilisi' is not an IANA time zone name"):
        convert("0 3 * * *", "Europe/Tbilisi", "Etc/UTC", WINTER)


# -- the settings ------------------------------------------------------------------------------

PRINT_JOBS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.CRONJOBS, getattr(s, 'CRONTAB_COMMAND_PREFIX', None)]))"
)


def test_the_settings_hold_the_schedule_converted_for_the_host_and_the_offsets_for_the_line():
    result = run_settings(PRINT_JOBS, SECRET_KEY="k", MEDIA_CLEANUP_HOST_TIME_ZONE="Etc/UTC")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '[[["0 23 * * *", "media_app.cron.cleanup_media"]], '
        '"MEDIA_CLEANUP_WRITTEN_FOR=TIME_ZONE+04:00,host+00:00"]'
    )


def test_the_run_converts_with_the_offsets_its_line_passes():
    result = run_settings(
        PRINT_JOBS,
        SECRET_KEY="k",
        MEDIA_CLEANUP_HOST_TIME_ZONE="Etc/UTC",
        MEDIA_CLEANUP_WRITTEN_FOR="TIME_ZONE+04:00,host+01:00",
    )

    assert result.returncode == 0, result.stderr
    assert '[["0 0 * * *", "media_app.cron.cleanup_media"]]' in result.stdout


def test_a_schedule_that_cannot_be_converted_leaves_cronjobs_empty_and_the_settings_load():
    result = run_settings(
        PRINT_JOBS, SECRET_KEY="k", MEDIA_CLEANUP_SCHEDULE="0 2 1 * *", MEDIA_CLEANUP_HOST_TIME_ZONE="Etc/UTC"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[[], ")


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"MEDIA_CLEANUP_HOST_TIME_ZONE": "Europe/Tbilisi"}, "MEDIA_CLEANUP_HOST_TIME_ZONE='Europe/Tbilisi'"),
        ({"MEDIA_CLEANUP_SCHEDULE": "0 3 * * 9"}, "'9' is not a valid day-of-week"),
    ],
)
def test_an_invalid_schedule_setting_is_refused_by_name_in_one_line(variables, named):
    result = manage("check", SECRET_KEY="k", **variables)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and named in result.stderr and "Traceback" not in result.stderr


def test_the_settings_do_not_create_the_log_folder(tmp_path):
    log_file = tmp_path / "logs" / "cleanup_media.log"

    result = run_settings(PRINT_JOBS, SECRET_KEY="k", MEDIA_CLEANUP_LOG_FILE=str(log_file))

    assert result.returncode == 0, result.stderr
    assert not log_file.parent.exists() and not os.path.exists(log_file)
