"""Line charts of figures over time, drawn as SVG by the server: no script, no CDN, no inline style.

Colours, lines and fonts are SVG presentation attributes, which a Content Security Policy's
``style-src`` does not govern; the app's stylesheet only adapts them to the admin's theme. Each
chart is an ``<svg role="img">`` named by its ``<title>`` and described by a ``<desc>`` that says
in words the latest values, their range and the marked points, for those who cannot see it.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from django.template.defaultfilters import filesizeformat
from django.utils import dateformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 320, 160
# Room for the value labels (left), the unit (top) and the dates (bottom).
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 20, 22
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
# Okabe and Ito's colours stay apart for the common colour blindnesses; the dashes keep the
# series apart in grey print too.
SERIES_STYLES = [("#0072B2", ""), ("#E69F00", "6 3"), ("#009E73", "2 2")]
BYTE_UNITS = ["bytes", "KB", "MB", "GB", "TB", "PB"]
MAX_VALUE_TICKS = 4
MAX_DAY_TICKS = 5
DAY_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 364)
MARKER_SIZE = 4
# Past this many points a line's dots touch: the line alone reads as well, in a smaller page.
MAX_DOTS = 120
# The width of a date such as "27 Nov" in the charts' font.
DATE_WIDTH = 34


class Kind(StrEnum):
    """What a chart's values count, which sets its axis's unit and how a value is written."""

    COUNT = "count"
    BYTES = "bytes"
    SECONDS = "seconds"


@dataclass(frozen=True)
class Marker:
    """How a point of a marked kind is drawn (``cross``, ``triangle``, ``square``) and said in words."""

    shape: str
    colour: str
    words: str


@dataclass(frozen=True)
class Timeline:
    """The points' times and marks, which every chart of a page shares, and the instant it is drawn.

    ``marks`` holds, for each time, "" for a point on the line, or a key of ``markers`` for a
    point drawn apart with that marker. The charts span whole days in ``zone``: from the start of
    the first point's day to the end of today (or of the last point's day, if later).
    """

    times: tuple[datetime, ...]
    marks: tuple[str, ...]
    markers: dict
    zone: tzinfo
    now: datetime

    @property
    def first_day(self):
        """Return the first day charted, in ``zone``."""
        return min([*self.times, self.now]).astimezone(self.zone).date()

    @property
    def start(self):
        """Return the charts' left edge: the first day's midnight."""
        return datetime.combine(self.first_day, time.min, tzinfo=self.zone)

    @property
    def end(self):
        """Return the charts' right edge: the midnight after today, or after the last point's day."""
        last_day = max([*self.times, self.now]).astimezone(self.zone).date()
        return datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=self.zone)

    def x(self, moment):
        """Return the horizontal position of ``moment``."""
        # Timestamps, since Python subtracts two times of one zone by their clocks, not across a
        # daylight-saving change.
        start = self.start.timestamp()
        return LEFT + (moment.timestamp() - start) / (self.end.timestamp() - start) * PLOT_WIDTH


@dataclass(frozen=True)
class Series:
    """One line of a chart: its label and one value per time of the timeline (None where unknown)."""

    label: str
    values: tuple


@dataclass(frozen=True)
class Chart:
    """A drawn chart: its title, the words that describe it, the SVG and the legend's entries."""

    slug: str
    title: str
    description: str
    svg: SafeString
    legend: list


def line_chart(timeline, slug, title, kind, series, noun=""):
    """Return the chart of ``series`` over ``timeline``; ``noun`` names what a COUNT counts."""
    known = [value for line in series for value in line.values if value is not None]
    divisor, unit = axis_unit(kind, max(known, default=0), noun)
    ticks = value_ticks(max(known, default=0) / divisor, integral=kind == Kind.COUNT)
    top = ticks[-1]

    def y(value):
        return TOP + PLOT_HEIGHT - (value or 0) / divisor / top * PLOT_HEIGHT

    description = describe(timeline, kind, series)
    parts = [
        format_html('<title id="chart-{}-title">{}</title>', slug, title),
        format_html('<desc id="chart-{}-desc">{}</desc>', slug, description),
        value_axis(ticks, y, divisor, unit),
        day_axis(timeline),
    ]
    for index, line in enumerate(series):
        parts.append(draw_series(timeline, kind, line, y, *SERIES_STYLES[index % len(SERIES_STYLES)]))
    for line in series:
        parts.append(draw_marked(timeline, kind, line, y))
    svg = format_html(
        '<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" '
        'aria-labelledby="chart-{}-title chart-{}-desc" font-family="system-ui, sans-serif" '
        'font-size="10">{}</svg>',
        WIDTH,
        HEIGHT,
        slug,
        slug,
        mark_safe("".join(parts)),
    )
    return Chart(slug, title, description, svg, legend(timeline, series))


def axis_unit(kind, largest, noun):
    """Return ``(divisor, unit)``: what the axis divides its values by, and the unit it then shows."""
    if kind == Kind.BYTES:
        power = 0
        while power < len(BYTE_UNITS) - 1 and largest >= 1024 ** (power + 1):
            power += 1
        return 1024**power, BYTE_UNITS[power]
    if kind == Kind.SECONDS:
        if largest >= 7200:
            return 3600, "hours"
        if largest >= 120:
            return 60, "minutes"
        return 1, "seconds"
    return 1, noun


def value_ticks(largest, integral):
    """Return the axis's ticks from 0 up past ``largest``, a round step apart (1, 2, 2.5 or 5 times 10**n)."""
    if largest <= 0:
        return [0, 1]
    wanted = largest / MAX_VALUE_TICKS
    magnitude = 10 ** math.floor(math.log10(wanted))
    # A count never stands between two whole numbers: no 2.5, and no step below 1.
    factors = (1, 2, 5, 10) if integral and magnitude < 10 else (1, 2, 2.5, 5, 10)
    step = next(factor * magnitude for factor in factors if factor * magnitude >= wanted)
    if integral:
        step = max(1, round(step))
    count = math.ceil(largest / step - 1e-9)
    return [round(index * step, 10) for index in range(count + 1)]


def tick_text(value):
    """Return a tick's label, short enough for the axis: 2.5, 1,000, 250k, 1.5M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:,g}"


def value_text(kind, value):
    """Return a value as a person reads it: 1,204 or 1.2 MB or 3.1 min."""
    if value is None:
        return "not recorded"
    if kind == Kind.BYTES:
        return filesizeformat(value).replace("\xa0", " ")
    if kind == Kind.SECONDS:
        if value >= 7200:
            return f"{value / 3600:.1f} h"
        if value >= 120:
            return f"{value / 60:.1f} min"
        return f"{value:.1f} s"
    return f"{int(value):,}"


def moment_text(timeline, moment, with_time=True):
    """Return an instant as a date (and time) of the timeline's zone."""
    return dateformat.format(moment.astimezone(timeline.zone), "j M Y H:i" if with_time else "j M Y")


def value_axis(ticks, y, divisor, unit):
    """Return the horizontal grid lines, their labels and the unit above them."""
    lines = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#d0d0d0" stroke-width="1"/>'
        '<text x="{}" y="{}" text-anchor="end" fill="#666666">{}</text>',
        (
            (LEFT, f"{y(tick * divisor):.1f}", WIDTH - RIGHT, f"{y(tick * divisor):.1f}")
            + (LEFT - 4, f"{y(tick * divisor) + 3.5:.1f}", tick_text(tick))
            for tick in ticks
        ),
    )
    return format_html(
        '<g class="grid">{}</g><text class="unit" x="{}" y="{}" fill="#666666">{}</text>',
        lines,
        4,
        TOP - 8,
        unit,
    )


def day_axis(timeline):
    """Return the baseline and the dates under it: local midnights, a round number of days apart."""
    days = (timeline.end.date() - timeline.start.date()).days
    step = next((step for step in DAY_STEPS if days <= step * MAX_DAY_TICKS), math.ceil(days / MAX_DAY_TICKS))
    midnights = (
        datetime.combine(timeline.first_day + timedelta(days=offset), time.min, tzinfo=timeline.zone)
        for offset in range(0, days, step)
    )
    # A date is written right of its midnight: one too near the right edge would be cut.
    ticks = [midnight for midnight in midnights if timeline.x(midnight) + DATE_WIDTH <= WIDTH]
    baseline = TOP + PLOT_HEIGHT
    marks = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999999" stroke-width="1"/>'
        '<text x="{}" y="{}" text-anchor="start" fill="#666666">{}</text>',
        (
            (f"{timeline.x(tick):.1f}", baseline, f"{timeline.x(tick):.1f}", baseline + 4)
            + (f"{timeline.x(tick) + 2:.1f}", baseline + 14, dateformat.format(tick, "j M"))
            for tick in ticks
        ),
    )
    return format_html(
        '<g class="axis"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999999" stroke-width="1"/>{}</g>',
        LEFT,
        baseline,
        WIDTH - RIGHT,
        baseline,
        marks,
    )


def on_line(timeline, line):
    """Return ``[(time, value)]`` of the series' unmarked points whose value is known."""
    return [
        (moment, value)
        for moment, mark, value in zip(timeline.times, timeline.marks, line.values, strict=True)
        if not mark and value is not None
    ]


def draw_series(timeline, kind, line, y, colour, dashes):
    """Return the line joining the series' unmarked points, and, when they are few, a dot on each."""
    points = on_line(timeline, line)
    path = format_html(
        '<polyline fill="none" stroke="{}" stroke-width="1.5" stroke-dasharray="{}" points="{}"/>',
        colour,
        dashes or "none",
        " ".join(point(timeline.x(moment), y(value)) for moment, value in points),
    )
    if len(points) > MAX_DOTS:
        return path
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="2" fill="{}"><title>{}: {} {}</title></circle>',
        (
            (
                f"{timeline.x(moment):.1f}",
                f"{y(value):.1f}",
                colour,
                moment_text(timeline, moment),
                line.label,
                value_text(kind, value),
            )
            for moment, value in points
        ),
    )
    return path + dots


def draw_marked(timeline, kind, line, y):
    """Return a marker for each marked point, at its value, or on the baseline where it is unknown."""
    shapes = []
    for moment, mark, value in zip(timeline.times, timeline.marks, line.values, strict=True):
        if not mark:
            continue
        marker = timeline.markers[mark]
        tooltip = (
            f"{moment_text(timeline, moment)}, run {marker.words}: {line.label} {value_text(kind, value)}"
        )
        shapes.append(marker_shape(marker, timeline.x(moment), y(value), tooltip))
    return mark_safe("".join(shapes))


def marker_shape(marker, x, y, tooltip=""):
    """Return ``marker``'s shape centred on ``(x, y)``."""
    size = MARKER_SIZE
    title = format_html("<title>{}</title>", tooltip) if tooltip else ""
    if marker.shape == "cross":
        path = (
            f"M{point(x - size, y - size)}L{point(x + size, y + size)}"
            f"M{point(x - size, y + size)}L{point(x + size, y - size)}"
        )
        return format_html(
            '<path d="{}" fill="none" stroke="{}" stroke-width="2">{}</path>', path, marker.colour, title
        )
    if marker.shape == "triangle":
        path = f"M{point(x, y - size)}L{point(x + size, y + size)}L{point(x - size, y + size)}Z"
        return format_html('<path d="{}" fill="{}">{}</path>', path, marker.colour, title)
    side = 2 * size - 2
    return format_html(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{}" stroke-width="1.5">{}</rect>',
        f"{x - side / 2:.1f}",
        f"{y - side / 2:.1f}",
        side,
        side,
        marker.colour,
        title,
    )


def point(x, y):
    """Return a point as SVG paths and polylines write it."""
    return f"{x:.1f},{y:.1f}"


def legend(timeline, series):
    """Return ``[(swatch, words)]``: each series' line, then the marker of each kind of marked point."""
    entries = []
    for index, line in enumerate(series):
        colour, dashes = SERIES_STYLES[index % len(SERIES_STYLES)]
        swatch = format_html(
            '<line x1="1" y1="6" x2="23" y2="6" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>',
            colour,
            dashes or "none",
        )
        entries.append((swatch_svg(swatch), line.label))
    for key, marker in timeline.markers.items():
        if key in timeline.marks:
            entries.append((swatch_svg(marker_shape(marker, 12, 6)), f"run {marker.words}"))
    return entries


def swatch_svg(content):
    """Return a legend's small picture of a line or marker, hidden from screen readers (the words say it)."""
    return format_html(
        '<svg class="swatch" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 12" width="24" height="12" '
        'aria-hidden="true" focusable="false">{}</svg>',
        content,
    )


def describe(timeline, kind, series):
    """Return the chart in words: the latest values, their range over the period, the marked points."""
    if not timeline.times:
        return "No runs to chart."
    last = len(timeline.times) - 1
    mark = timeline.marks[last]
    status = f", run {timeline.markers[mark].words}" if mark else ""
    latest = "; ".join(f"{line.label} {value_text(kind, line.values[last])}" for line in series)
    if len(timeline.times) == 1:
        return f"One run, {moment_text(timeline, timeline.times[0])}{status}: {latest}."
    # The range of the line only: a marked run's figures stop where it stopped.
    ranges = "; ".join(
        f"{line.label} from {value_text(kind, min(known))} to {value_text(kind, max(known))}"
        for line in series
        if (known := [value for _, value in on_line(timeline, line)])
    )
    sentences = [
        f"Latest run, {moment_text(timeline, timeline.times[last])}{status}: {latest}.",
        f"{len(timeline.times)} runs from {moment_text(timeline, timeline.times[0], with_time=False)} "
        f"to {moment_text(timeline, timeline.times[last], with_time=False)}"
        + (f": {ranges}." if ranges else "."),
    ]
    marked = [
        f"{count} {'run' if count == 1 else 'runs'} {marker.words}"
        for key, marker in timeline.markers.items()
        if (count := timeline.marks.count(key))
    ]
    if marked:
        sentences.append(f"Marked apart from the line: {', '.join(marked)}.")
    return " ".join(sentences)
