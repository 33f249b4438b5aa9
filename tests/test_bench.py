"""The small benchmark: the harness builds the promised data set, and every approach runs and reports.

Never a timing assertion: the figures of a few thousand items on a shared machine prove nothing.
The harness works on the test database (a subprocess reaches it through ``database_url()``).
"""

import os
import subprocess
import sys
import time
import types

import pytest

from bench import dataset, measure, probe, report, run
from bench.walk import walk_files
from media_app.models import Media
from tests.conftest import database_url

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 2000
SAMPLE = 100
FOLDERS = {"tours", "companies", "guides", "drivers", "users"}


def assert_planted(manifest, media_root):
    """Check, independently of the harness, that the data set holds exactly what its manifest says."""
    stored = set(walk_files(media_root))
    rows = list(Media.objects.values_list("file", "content_type", "object_id"))
    assert (manifest.rows, manifest.files, len(rows), len(stored)) == (SIZE, SIZE, SIZE, SIZE)
    assert set(manifest.folders) == FOLDERS
    named = {name for name, _, _ in rows}
    for model in dataset.owner_models():
        folder = model._meta.verbose_name_plural
        planted = manifest.folders[folder]
        live = {str(pk) for pk in model.objects.values_list("pk", flat=True)}
        mine = [(name, str(owner)) for name, _, owner in rows if name.startswith(f"uploads/{folder}/")]
        orphaned = [name for name, owner in mine if owner not in live]
        missing = [name for name, owner in mine if owner in live and name not in stored]
        strays = [name for name in stored - named if name.startswith(f"uploads/{folder}/")]
        assert min(planted["orphaned_records"], planted["orphaned_files"], planted["missing_files"]) >= 1
        assert (len(orphaned), len(strays), len(missing)) == (
            planted["orphaned_records"],
            planted["orphaned_files"],
            planted["missing_files"],
        )
        assert all(name in stored for name in orphaned), "an orphaned row's file exists, to go with it"
        day_ago = time.time() - 86400
        assert all(os.lstat(media_root / name).st_mtime < day_ago for name in strays)


def test_the_data_set_plants_orphans_of_every_kind_in_every_owner_folder(media_root):
    manifest = dataset.generate(SIZE, media_root)

    assert_planted(manifest, media_root)


def test_replant_puts_back_what_a_real_run_removes(media_root):
    manifest = dataset.generate(SIZE, media_root)
    doomed = [row[dataset.MEDIA_COLUMNS.index("file")] for row in manifest.orphaned_rows]
    Media.objects.filter(file__in=doomed).delete()
    for name in [*doomed, *manifest.stray_names]:
        (media_root / name).unlink(missing_ok=True)  # the row's delete may have taken its file already

    dataset.replant(manifest, media_root)

    assert_planted(manifest, media_root)


def test_a_data_set_too_small_for_one_orphan_per_kind_and_folder_is_refused(media_root):
    with pytest.raises(ValueError, match="at least"):
        dataset.generate(dataset.MIN_SIZE - 1, media_root)


@pytest.fixture
def logged():
    """The lines the harness logs while it measures."""
    return []


@pytest.fixture
def measured(media_root, logged):
    """Generate the small data set and measure every approach on it once."""
    env = run.probe_env(database_url(), media_root)
    return run.bench_size(SIZE, media_root, env, runs=1, sample=SAMPLE, log=logged.append)


def test_every_approach_runs_reports_and_finds_the_planted_orphans(measured, media_root, logged):
    result = measured

    manifest = result.manifest
    assert set(result.runs) == {key for key, _, _ in run.approaches(SAMPLE)}
    for measurement in [*(runs[0] for runs in result.runs.values()), *result.real]:
        assert measurement.exit_code == 0
        assert measurement.wall > 0 and measurement.peak_rss_mib > 0
    sweep = result.runs["sweep"][0]
    assert sweep.report["children_peak_rss_mib"] > 0, "the listing process's memory is counted"
    assert sweep.peak_rss_mib == sweep.report["peak_rss_mib"] + sweep.report["children_peak_rss_mib"]
    rows = {row.key: row for row in report.rows_for(result, SAMPLE)}
    for key in ("sweep", "real", "peer", "batched"):
        assert rows[key].found.startswith("yes"), rows[key].found
    assert (rows["walk"].queries, rows["rows"].queries) == (0, 1)
    assert 0 < rows["sweep"].queries < SIZE, "one query per item would be thousands"
    per_item = result.runs["per_item"][0].report
    assert (per_item["sampled_files"], per_item["sampled_rows"]) == (SAMPLE, SAMPLE)
    assert rows["per_item"].queries == manifest.rows + manifest.files
    # The real sweep ran last and removed exactly what was planted; the peer removed nothing.
    assert Media.objects.count() == SIZE - manifest.orphaned_records
    assert len(list(walk_files(media_root))) == SIZE - manifest.orphaned_files - manifest.orphaned_records
    # The floor and a dry run, not counted, read first what the floor and the sweep read.
    warm_ups = [number for number, line in enumerate(logged) if "warm-up" in line]
    first_round = next(number for number, line in enumerate(logged) if "round 1/" in line)
    assert len(warm_ups) == len(run.FLOOR) + 1 and max(warm_ups) < first_round, logged
    assert result.page_cache == "kept", "the page cache is dropped only when asked"


def test_the_page_cache_is_dropped_by_whoever_may_and_kept_otherwise(tmp_path):
    control = tmp_path / "drop_caches"  # /proc/sys/vm/drop_caches is the machine's: not dropped in tests
    control.write_text("")

    assert run.drop_clean_pages(control) == "dropped after the data set was written"
    assert control.read_text() == "1", "1: clean pages only; the inodes and folder entries stay"
    kept = run.drop_clean_pages(tmp_path / "no-such-folder" / "drop_caches")
    assert kept.startswith("kept (cannot write ") and "No such file or directory" in kept


def test_the_report_has_every_column_and_approach_and_a_plot(measured, tmp_path):
    result = measured

    text = report.render({SIZE: result}, runs=1, sample=SAMPLE)
    header = next(line for line in text.splitlines() if line.startswith("| approach"))
    assert header == "| " + " | ".join(report.COLUMNS) + " |"
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + len(report.rows_for(result, SAMPLE))  # the header and its rule
    assert all(line.count(" | ") == len(report.COLUMNS) - 1 for line in table)
    assert "extrapolated" in text and "### Goals" in text
    assert "Page cache: kept; then the floor and a dry run, not counted." in text
    written = report.save({SIZE: result}, text, tmp_path / "results")
    assert [os.path.splitext(path)[1] for path in written] == [".md", ".json"]
    plot = tmp_path / "plot.png"
    report.plot({SIZE: result}, plot)
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_the_children_s_memory_is_their_own_never_what_they_inherit_from_this_process():
    """Linux carries a parent's size over fork and exec into ``ru_maxrss``: the watch must not count it."""
    ballast = bytearray(200 * 2**20)
    ballast[:: 2**12] = b"x" * len(ballast[:: 2**12])  # touched: resident, shared with a fork
    measured = {}
    stop_watching = probe.watch_children_memory(measured)
    subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)"], check=True)
    forked = os.fork()
    if forked == 0:  # a child that never runs a program of its own and writes nothing: shares it all
        time.sleep(0.3)
        os._exit(0)
    os.waitpid(forked, 0)
    shared = measured["forked_private_peak_mib"]
    forked = os.fork()
    if forked == 0:  # one that writes half the ballast: those pages become its own
        ballast[: 100 * 2**20 : 2**12] = b"y" * len(ballast[: 100 * 2**20 : 2**12])
        time.sleep(0.3)
        os._exit(0)
    os.waitpid(forked, 0)
    stop_watching()

    assert 0 < measured["children_peak_rss_mib"] < 50, "a bare Python takes about 10 MiB, never 200"
    assert 0 < shared < 50, "a fork shares what it does not write"
    assert 95 < measured["forked_private_peak_mib"] < 150, "what a fork writes is its own"
    # With this process's memory, the ballast's 200 MiB and more: the sum at one reading.
    assert measured["forked_peak_total_mib"] > measured["forked_private_peak_mib"] + 200
    assert "forked_beside_a_program" not in measured, "the fork ran after the other child"


def test_a_fork_beside_a_program_adds_up(tmp_path):
    measured = {}
    stop_watching = probe.watch_children_memory(measured)
    program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    time.sleep(0.3)  # exec'd by now
    forked = os.fork()
    if forked == 0:
        time.sleep(0.3)
        os._exit(0)
    os.waitpid(forked, 0)
    program.wait()
    stop_watching()

    assert measured["forked_beside_a_program"] is True


def test_each_run_is_set_against_the_floor_of_its_own_time():
    def wall(seconds):
        return types.SimpleNamespace(wall=seconds)

    result = run.SizeResult(
        manifest=None,
        runs={
            "walk": [wall(2.0), wall(3.0)],
            "rows": [wall(1.0), wall(1.0)],
            "sweep": [wall(2.4), wall(3.6)],
        },
        real=[wall(3.0), wall(6.0)],
        real_floors=[{"walk": wall(2.0), "rows": wall(1.0)}, {"walk": wall(4.0), "rows": wall(1.0)}],
    )

    ratios = report.run_ratios(result)
    assert ratios["sweep"] == pytest.approx([0.8, 0.9]) and ratios["real"] == pytest.approx([1.0, 1.2])


def test_the_project_is_compiled_before_anything_is_measured(monkeypatch):
    """A measured process reads the project's bytecode, as a deployed one does, and compiles nothing."""
    import importlib.util

    engine = run.PROJECT_DIR / "media_app" / "cleanup" / "engine.py"
    cached = importlib.util.cache_from_source(str(engine))
    if os.path.exists(cached):
        os.remove(cached)

    run.compile_project()

    assert os.path.exists(cached)


def test_the_peak_adds_what_runs_at_once():
    collect = {"peak_rss_mib": 70.0, "children_peak_rss_mib": 18.0}
    after = {"forked_private_peak_mib": 14.0, "forked_peak_total_mib": 83.0}

    assert measure.peak_mib(collect) == 88.0
    assert measure.peak_mib({**collect, **after}) == 88.0, "the fork ran after the listing"
    assert measure.peak_mib({**collect, **after, "forked_peak_total_mib": 95.0}) == 95.0
    assert measure.peak_mib({**collect, **after, "forked_beside_a_program": True}) == 102.0
