"""The charts drawn as SVG: one run, a hundred, none; marked runs; units; dates; words for screen readers."""

import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from media_app.charts import (
    DATE_WIDTH,
    HEIGHT,
    LEFT,
    MAX_DAY_TICKS,
    MAX_DOTS,
    PLOT_HEIGHT,
    PLOT_WIDTH,
    TOP,
    WIDTH,
    Kind,
    Marker,
    Series,
    Timeline,
    axis_unit,
    line_chart,
    tick_text,
    value_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
TBILISI = ZoneInfo("Asia/Tbilisi")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MARKERS = {
    "failed": Marker("cross", "#D55E00", "failed"),
    "refused": Marker("triangle", "#CC79A7", "refused by the safety cap"),
    "interrupted": Marker("square", "#7F7F7F", "interrupted"),
}
BASELINE = TOP + PLOT_HEIGHT


def timeline(times, marks=None):
    return Timeline(tuple(times), tuple(marks or [""] * len(times)), MARKERS, TBILISI, NOW)


def parsed(chart):
    return ElementTree.fromstring(str(chart.svg))


def found(chart, tag):
    return parsed(chart).findall(f".//{SVG}{tag}")


def line_points(chart):
    """Return the ``(x, y)`` of each polyline's points, one list per series."""
    return [
        [tuple(map(float, pair.split(","))) for pair in polyline.get("points").split()]
        for polyline in found(chart, "polyline")
    ]


def date_labels(chart):
    axis = parsed(chart).find(f"{SVG}g[@class='axis']")
    return [(float(text.get("x")), text.text) for text in axis.findall(f"{SVG}text")]


def value_labels(chart):
    grid = parsed(chart).find(f"{SVG}g[@class='grid']")
    return [text.text for text in grid.findall(f"{SVG}text")]


def unit(chart):
    return parsed(chart).find(f"{SVG}text[@class='unit']").text


def test_one_run_is_a_dot_with_its_value_in_words():
    run = datetime(2026, 11, 27, 3, 0, tzinfo=TBILISI)

    chart = line_chart(
        timeline([run]), "files", "Files in storage", Kind.COUNT, [Series("files", (1204,))], "files"
    )

    assert len(found(chart, "circle")) == 1
    assert chart.description == "One run, 27 Nov 2026 03:00: files 1,204."
    assert date_labels(chart)[0][1] == "27 Nov"
    assert value_labels(chart) == ["0", "500", "1,000", "1,500"] and unit(chart) == "files"


def test_a_hundred_runs_over_ninety_days_stay_readable():
    times = [NOW - timedelta(hours=21.6 * index) for index in reversed(range(100))]
    values = tuple(1000 + 10 * index for index in range(100))

    chart = line_chart(timeline(times), "files", "Files in storage", Kind.COUNT, [Series("files", values)])

    (points,) = line_points(chart)
    xs = [x for x, _ in points]
    labels = date_labels(chart)
    assert len(points) == 100 and len(found(chart, "circle")) == 100
    assert xs == sorted(xs) and len(set(xs)) == 100
    assert 2 <= len(labels) <= MAX_DAY_TICKS
    assert all(x + DATE_WIDTH <= WIDTH + 2 for x, _ in labels)
    assert len({text for _, text in labels}) == len(labels)
    assert len(value_labels(chart)) <= 6
    assert "100 runs from 30 Aug 2026 to 27 Nov 2026: files from 1,000 to 1,990." in chart.description
    assert chart.description.startswith("Latest run, 27 Nov 2026 16:00: files 1,990.")


def test_a_line_of_many_points_leaves_out_its_dots():
    times = [NOW - timedelta(hours=2 * index) for index in reversed(range(MAX_DOTS + 1))]

    chart = line_chart(timeline(times), "files", "Files", Kind.COUNT, [Series("files", (7,) * len(times))])

    (points,) = line_points(chart)
    assert len(points) == MAX_DOTS + 1 and found(chart, "circle") == []


def test_no_runs_draw_an_empty_frame_and_say_so():
    chart = line_chart(timeline([]), "files", "Files in storage", Kind.COUNT, [Series("files", ())])

    assert chart.description == "No runs to chart."
    assert found(chart, "circle") == [] and line_points(chart) == [[]]
    assert value_labels(chart) == ["0", "1"]


def test_marked_runs_stand_apart_from_the_line_with_a_marker_and_legend_words():
    times = [NOW - timedelta(days=5 - day) for day in range(5)]
    marks = ["", "failed", "", "refused", "interrupted"]
    # The failed run stopped before it listed the storage: its 0 is no emptied storage.
    values = (1000, 0, 1100, 1150, 400)

    chart = line_chart(
        timeline(times, marks), "files", "Files in storage", Kind.COUNT, [Series("files", values)]
    )

    (points,) = line_points(chart)
    assert len(points) == 2 and all(y < BASELINE - 50 for _, y in points)
    shapes = [
        (element.tag.removeprefix(SVG), element.get("stroke") or element.get("fill"))
        for element in parsed(chart)
        if element.tag in (f"{SVG}path", f"{SVG}rect")
    ]
    assert shapes == [("path", "#D55E00"), ("path", "#CC79A7"), ("rect", "#7F7F7F")]
    assert [words for _, words in chart.legend] == [
        "files",
        "run failed",
        "run refused by the safety cap",
        "run interrupted",
    ]
    assert chart.description.endswith(
        "files from 1,000 to 1,100. "
        "Marked apart from the line: 1 run failed, 1 run refused by the safety cap, 1 run interrupted."
    )
    assert ", run interrupted: files 400." in chart.description


def test_a_legend_names_only_the_marks_that_occur():
    times = [NOW - timedelta(days=1), NOW]

    chart = line_chart(
        timeline(times, ["", "failed"]), "errors", "Errors", Kind.COUNT, [Series("errors", (0, 1))]
    )

    assert [words for _, words in chart.legend] == ["errors", "run failed"]


def test_a_marked_run_without_a_value_sits_on_the_baseline():
    times = [NOW - timedelta(days=1), NOW]

    chart = line_chart(
        timeline(times, ["", "interrupted"]),
        "duration",
        "Duration",
        Kind.SECONDS,
        [Series("duration", (40.0, None))],
    )

    (square,) = found(chart, "rect")
    assert float(square.get("y")) + float(square.get("height")) / 2 == pytest.approx(BASELINE)
    assert "run interrupted: duration not recorded." in chart.description


@pytest.mark.parametrize(
    ("kind", "largest", "noun", "expected"),
    [
        (Kind.BYTES, 500, "", (1, "bytes")),
        (Kind.BYTES, 3 * 1024**2, "", (1024**2, "MB")),
        (Kind.BYTES, 5 * 1024**3, "", (1024**3, "GB")),
        (Kind.SECONDS, 30, "", (1, "seconds")),
        (Kind.SECONDS, 600, "", (60, "minutes")),
        (Kind.SECONDS, 3 * 3600, "", (3600, "hours")),
        (Kind.COUNT, 10**6, "files", (1, "files")),
    ],
)
def test_each_axis_shows_a_unit_a_person_reads(kind, largest, noun, expected):
    assert axis_unit(kind, largest, noun) == expected


def test_bytes_and_durations_are_drawn_and_told_in_their_units():
    times = [NOW - timedelta(days=1), NOW]

    size = line_chart(
        timeline(times), "size", "Size", Kind.BYTES, [Series("uploads/", (2 * 1024**3, 5 * 1024**3))]
    )
    took = line_chart(timeline(times), "took", "Took", Kind.SECONDS, [Series("duration", (90.0, 600.0))])

    assert unit(size) == "GB" and value_labels(size) == ["0", "2", "4", "6"]
    assert "uploads/ 5.0 GB" in size.description and "from 2.0 GB to 5.0 GB" in size.description
    assert unit(took) == "minutes" and value_labels(took) == ["0", "2.5", "5", "7.5", "10"]
    assert "duration 10.0 min" in took.description and "from 90.0 s" in took.description


@pytest.mark.parametrize(
    ("largest", "integral", "ticks"),
    [
        (0, True, [0, 1]),
        (1, True, [0, 1]),
        (4, True, [0, 1, 2, 3, 4]),
        (7, True, [0, 2, 4, 6, 8]),
        (10, True, [0, 5, 10]),
        (0.9, False, [0, 0.25, 0.5, 0.75, 1.0]),
        (1_234_567, True, [0, 500_000, 1_000_000, 1_500_000]),
    ],
)
def test_value_ticks_are_round_and_counts_whole(largest, integral, ticks):
    assert value_ticks(largest, integral) == ticks


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (2.5, "2.5"), (1000, "1,000"), (250_000, "250k"), (1_500_000, "1.5M")],
)
def test_tick_labels_fit_the_axis(value, text):
    assert tick_text(value) == text


def test_dates_are_those_of_the_time_zone():
    # 21:30 UTC on the 26th is 01:30 on the 27th in Tbilisi (UTC+4).
    run = datetime(2026, 11, 26, 21, 30, tzinfo=UTC)

    chart = line_chart(
        Timeline((run,), ("",), MARKERS, TBILISI, run), "files", "Files", Kind.COUNT, [Series("files", (3,))]
    )

    assert "27 Nov 2026 01:30" in chart.description
    assert [text for _, text in date_labels(chart)] == ["27 Nov"]
    assert found(chart, "circle")[0].find(f"{SVG}title").text.startswith("27 Nov 2026 01:30")


def test_each_chart_is_an_image_named_by_its_title_and_described_in_words():
    chart = line_chart(
        timeline([NOW]), "found", "Found <by> each run", Kind.COUNT, [Series("orphaned rows", (2,))]
    )

    svg = parsed(chart)
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
    assert title.text == "Found <by> each run" and "&lt;by&gt;" in str(chart.svg)
    assert desc.text == chart.description == "One run, 27 Nov 2026 16:00: orphaned rows 2."
    assert (svg.get("viewBox"), LEFT < WIDTH) == (f"0 0 {WIDTH} {HEIGHT}", True)


def test_no_inline_style_or_script_anywhere():
    times = [NOW - timedelta(days=2), NOW - timedelta(days=1), NOW]
    chart = line_chart(
        timeline(times, ["", "failed", "interrupted"]),
        "size",
        "Size",
        Kind.BYTES,
        [Series("uploads/", (1, 2, None)), Series("quarantine", (0, 1, 2))],
    )

    html = str(chart.svg) + "".join(str(swatch) for swatch, _ in chart.legend)
    assert not re.search(r"style\s*=|<style|<script|\son\w+\s*=", html)


def test_a_daylight_saving_change_moves_no_point():
    # Berlin's clocks went back an hour in the night to 25 Oct 2026: that day lasted 25 hours.
    berlin = ZoneInfo("Europe/Berlin")
    noon = datetime(2026, 10, 26, 11, 0, tzinfo=UTC)
    times = (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), noon)

    span = Timeline(times, ("", ""), MARKERS, berlin, noon)

    # From midnight of the 25th (22:00 UTC on the 24th) to midnight of the 27th: 49 hours.
    assert span.x(noon) == pytest.approx(LEFT + 37 / 49 * PLOT_WIDTH)
