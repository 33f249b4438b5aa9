"""Turn measurements into the report: one table per size, the goals, the raw JSON and the plot."""

import dataclasses
import json
import os
import platform
import re
import statistics
import time

import django
from django.db import connection

PEER_TOTAL = re.compile(r"Total files will be removed: (\d+)")
COLUMNS = [
    "approach",
    "wall s",
    "× floor",
    "peak RSS MiB",
    "queries",
    "items/s",
    "found the planted orphans",
]
GOALS = {"sweep": 0.85, "real": 1.0}
RSS_LIMIT_MIB = 100
RSS_GROWTH_LIMIT = 0.10


@dataclasses.dataclass
class Row:
    """One line of a size's table."""

    key: str
    approach: str
    wall: float
    peak_rss_mib: float
    queries: int
    items: int
    found: str

    def cells(self, floor):
        return [
            self.approach,
            f"{self.wall:.2f}",
            f"{self.wall / floor:.2f}",
            f"{self.peak_rss_mib:.0f}",
            f"{self.queries:,}",
            f"{self.items / self.wall:,.0f}" if self.items else "—",
            self.found,
        ]


def median(measurements, attribute):
    return statistics.median(getattr(measurement, attribute) for measurement in measurements)


def median_count(measurements, key):
    return round(statistics.median(measurement.report[key] for measurement in measurements))


def verdict(expected, found):
    """Return ``yes`` when every found figure equals the planted one, else what differs."""
    wrong = [f"{key} {found[key]} ≠ {value}" for key, value in expected.items() if found[key] != value]
    return "yes" if not wrong else "NO: " + ", ".join(wrong)


def planted(manifest, *keys):
    return {key: getattr(manifest, key) for key in keys}


def sweep_found(manifest, figures, real):
    expected = planted(manifest, "orphaned_records", "orphaned_files", "missing_files")
    expected.update(records_checked=manifest.rows, files_checked=manifest.files, status="ok")
    # Each orphaned row has a file of its own: it goes with the row.
    expected.update(deleted_records=manifest.orphaned_records)
    expected.update(deleted_files=manifest.orphaned_files + manifest.orphaned_records)
    text = verdict(expected, figures)
    return text if real else text.replace("yes", "yes (dry run)", 1)


def peer_found(manifest, stdout):
    match = PEER_TOTAL.search(stdout)
    found = {"orphaned_files": int(match.group(1)) if match else None}
    return verdict(planted(manifest, "orphaned_files"), found) + " (files only)"


def rows_for(result, sample):
    """Return the table rows of one size, the floor first."""
    manifest, runs = result.manifest, result.runs
    both = manifest.rows + manifest.files

    def row(key, approach, items, found, measurements=None):
        measurements = measurements or runs[key]
        return Row(
            key,
            approach,
            median(measurements, "wall"),
            median(measurements, "peak_rss_mib"),
            median_count(measurements, "queries"),
            items,
            found,
        )

    walk = row("walk", "floor (a): walk the files once (`os.scandir` + `lstat`)", manifest.files, "—")
    rows = row("rows", "floor (b): stream the rows once (`values_list(...).iterator()`)", manifest.rows, "—")
    floor = Row(
        "floor",
        "**floor = (a) + (b)**",
        walk.wall + rows.wall,
        max(walk.peak_rss_mib, rows.peak_rss_mib),
        walk.queries + rows.queries,
        both,
        "—",
    )
    sweep_figures = runs["sweep"][-1].json_output()
    real_figures = result.real[-1].json_output()
    table = [
        walk,
        rows,
        floor,
        row("startup", "Python + Django start-up and a connection, nothing else", 0, "—"),
        row(
            "sweep",
            "**this sweep, dry run** (`--dry-run --min-age 0 --force --json`)",
            both,
            sweep_found(manifest, sweep_figures, real=False),
        ),
        row(
            "real",
            "**this sweep, real run** (what it removes is put back between runs)",
            both,
            sweep_found(manifest, real_figures, real=True),
            result.real,
        ),
    ]
    if "peer" in runs:
        table.append(
            row(
                "peer",
                "django-unused-media 0.2.2 (`cleanup_unused_media --dry-run`)",
                both,
                peer_found(manifest, runs["peer"][-1].stdout),
            )
        )
    if "batched" in runs:
        table.append(
            row(
                "batched",
                "batched lookups (pages of 2,000 names, one `__in` query each)",
                both,
                verdict(planted(manifest, "orphaned_records", "orphaned_files"), runs["batched"][-1].report),
            )
        )
    if "per_item" in runs:
        table.append(
            Row(
                "per_item",
                f"one query per file and per row (*extrapolated* from {sample:,} of each)",
                extrapolate_per_item(manifest, runs["per_item"]),
                median(runs["per_item"], "peak_rss_mib"),
                both,
                both,
                "— (a sample)",
            )
        )
    return table


def extrapolate_per_item(manifest, measurements):
    """Return the median time the per-item loops would take on the whole data set, scaled linearly."""
    return statistics.median(
        m.report["files_seconds"] * manifest.files / max(1, m.report["sampled_files"])
        + m.report["rows_seconds"] * manifest.rows / max(1, m.report["sampled_rows"])
        for m in measurements
    )


def table(rows):
    floor = next(row for row in rows if row.key == "floor").wall
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells(floor)) + " |" for row in rows]
    return "\n".join(lines)


def machine():
    """Return one line about the machine, the database and the versions."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        database = cursor.fetchone()[0]
    if connection.vendor == "sqlite":
        database = f"SQLite {database}"
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB RAM, {platform.platform()}; Python "
        f"{platform.python_version()}, Django {django.get_version()}; {database.split(' on ')[0]}"
    )


def run_ratios(result):
    """Return ``{"sweep": [...], "real": [...]}``: each run's wall time over the floor of its own time.

    A dry run is set against the floor measured in its round; a real run against the floor
    measured just before it. Every run must meet the goal, not only the median.
    """
    runs = result.runs
    dry = [
        sweep.wall / (walk.wall + rows.wall)
        for sweep, walk, rows in zip(runs["sweep"], runs["walk"], runs["rows"], strict=True)
    ]
    real = [
        sweep.wall / sum(measurement.wall for measurement in floor.values())
        for sweep, floor in zip(result.real, result.real_floors, strict=True)
    ]
    return {"sweep": dry, "real": real}


def goals(table_rows, results):
    """Return the goals, each with the figures measured and, where it is a limit, a verdict."""
    sizes = sorted(table_rows)
    rows = [{row.key: row for row in table_rows[size]} for size in sizes]
    lines = []
    for key, limit in GOALS.items():
        label = "dry run" if key == "sweep" else "real run"
        each = [run_ratios(results[size])[key] for size in sizes]
        met = all(ratio <= limit for ratios in each for ratio in ratios)
        figures = "; ".join(
            f"{', '.join(f'{ratio:.2f}×' for ratio in ratios)} at {size:,}"
            for ratios, size in zip(each, sizes, strict=True)
        )
        lines.append(
            f"- {label} within {limit}× the floor, every run (each against the floor of its own time): "
            f"{figures} — {'met' if met else 'NOT met'}"
        )
    peaks = [max(row[key].peak_rss_mib for key in GOALS) for row in rows]
    met = max(peaks) <= RSS_LIMIT_MIB
    lines.append(goal_line(f"peak RSS at most {RSS_LIMIT_MIB} MiB", peaks, sizes, "{:.0f} MiB", met))
    if len(sizes) > 1:
        growth = peaks[-1] / peaks[0] - 1
        lines.append(
            f"- peak RSS growth from {sizes[0]:,} to {sizes[-1]:,}: {growth:+.1%} "
            f"(under {RSS_GROWTH_LIMIT:.0%}) — {'met' if growth < RSS_GROWTH_LIMIT else 'NOT met'}"
        )
    statements = [f"{row['sweep'].queries:,}" for row in rows]
    lines.append(
        goal_line("dry-run queries (not to grow with the rows: no query per item)", statements, sizes)
    )
    for key, label in (("sweep", "dry-run"), ("real", "real-run")):
        seconds = [row[key].wall / (size / 100_000) for row, size in zip(rows, sizes, strict=True)]
        lines.append(
            goal_line(f"{label} seconds per 100,000 rows and files (to stay flat)", seconds, sizes, "{:.2f}")
        )
    seconds = [
        (row["sweep"].wall - row["startup"].wall) / (size / 100_000)
        for row, size in zip(rows, sizes, strict=True)
    ]
    lines.append(goal_line("dry run, the same with start-up taken off", seconds, sizes, "{:.2f}"))
    return "\n".join(lines)


def goal_line(label, values, sizes, fmt="{}", met=None):
    figures = ", ".join(f"{fmt.format(value)} at {size:,}" for value, size in zip(values, sizes, strict=True))
    return f"- {label}: {figures}" + ("" if met is None else f" — {'met' if met else 'NOT met'}")


def render(results, runs, sample):
    """Return the whole report as Markdown."""
    table_rows = {size: rows_for(result, sample) for size, result in results.items()}
    parts = [
        f"Machine: {machine()}.",
        f"Medians of {runs} run(s) per approach, each in its own process, in rounds; then the real sweep "
        f"{runs} time(s), what it removed put back between runs. "
        "Wall = process wall time; peak RSS = the process's `VmHWM`, with its children's (see "
        "docs/benchmarks.md); items = rows + files.",
    ]
    for size in sorted(table_rows):
        manifest = results[size].manifest
        parts.append(
            f"### {size:,} rows and files\n\n"
            f"Planted: {manifest.orphaned_records:,} rows whose owner is gone, {manifest.orphaned_files:,} "
            f"files no row names, {manifest.missing_files:,} rows whose file is missing. "
            f"Page cache: {results[size].page_cache}; then the floor and a dry run, not counted.\n\n"
            + table(table_rows[size])
        )
    parts.append("### Goals\n\n" + goals(table_rows, results))
    return "\n\n".join(parts) + "\n"


def save(results, text, folder):
    """Write the report and the raw figures under ``folder``; return the paths."""
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, f"bench-{connection.vendor}-{time.strftime('%Y%m%d-%H%M%S')}")
    raw = {
        size: {
            "manifest": result.manifest.figures(),
            "page_cache": result.page_cache,
            "runs": {key: [raw_figures(m) for m in ms] for key, ms in result.runs.items()},
            "real": [raw_figures(m) for m in result.real],
            "real_floors": [
                {key: raw_figures(m) for key, m in floor.items()} for floor in result.real_floors
            ],
        }
        for size, result in results.items()
    }
    with open(stem + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    with open(stem + ".json", "w", encoding="utf-8") as handle:
        json.dump(raw, handle, indent=1)
    return [stem + ".md", stem + ".json"]


def raw_figures(measurement):
    return {
        "wall": measurement.wall,
        "peak_rss_mib": measurement.peak_rss_mib,
        "report": measurement.report,
        "stdout": measurement.stdout,
    }


def plot(results, path):
    """Plot wall time and peak RSS against the size for the sweep, the peer and the floor."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = sorted(results)
    table_rows = {size: {row.key: row for row in rows_for(results[size], 0)} for size in sizes}
    series = {
        "this sweep, dry run": ("sweep", "C0-"),
        "this sweep, real run": ("real", "C0--"),
        "django-unused-media 0.2.2": ("peer", "C1-"),
        "floor (a) + (b)": ("floor", "C2-"),
    }
    figure, (time_axis, memory_axis) = pyplot.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for axis, attribute, title in [
        (time_axis, "wall", "wall time (s)"),
        (memory_axis, "peak_rss_mib", "peak RSS (MiB)"),
    ]:
        highest = 0
        for label, (key, style) in series.items():
            values = [getattr(table_rows[size][key], attribute) for size in sizes]
            axis.plot(sizes, values, style, marker="o", label=label)
            highest = max(highest, *values)
        axis.set_xticks(sizes, [f"{s:,}" for s in sizes])
        axis.set_xlim(left=0)
        axis.set_ylim(0, highest * 1.1)
        axis.set_xlabel("media rows = files")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    time_axis.legend()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
