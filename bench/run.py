"""Benchmark the sweep against its floor, django-unused-media and two naive designs (``make bench``).

    python -m bench.run --sizes 100000,300000,1000000 --runs 3 --plot docs/benchmarks-scaling.png

For each size: empty the tables, generate the data set (bench/dataset.py) in a temporary
MEDIA_ROOT, then run every approach ``--runs`` times in rounds (each its own process, measured
alone), then the real sweep as many times, putting back what it removed between runs. Prints
a Markdown report and writes it, with the raw figures as JSON, under ``bench/results/``.
"""

import argparse
import compileall
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict

from .measure import PROJECT_DIR, run_probe

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_media"
SWEEP = ["command", "cleanup_media", "--min-age", "0", "--force", "--json"]
PEER = ["command", "cleanup_unused_media", "--dry-run", "--noinput", "--minimum-file-age", "0"]
PROJECT_SETTINGS = "mediaproject.settings"
# The project's own packages, which a measured process imports.
PROJECT_PACKAGES = ("mediaproject", "media_app", "tours", "accounts", "bench")
PEER_SETTINGS = "bench.settings"


class BenchError(Exception):
    """A measured process failed: its figures would mean nothing."""


@dataclasses.dataclass
class SizeResult:
    """The measurements of one data set: every approach's runs, and the real sweeps.

    ``real_floors`` holds, for each real sweep, the floor's two passes measured just before it
    (``{"walk": ..., "rows": ...}``), so that each run is set against a floor of its own time.
    """

    manifest: object
    runs: dict
    real: list
    real_floors: list = dataclasses.field(default_factory=list)
    page_cache: str = "kept"  # what became of the page cache once the data set was written


# Written "1", it drops the kernel's clean page cache; the inodes and folder entries in memory stay.
DROP_CACHES = "/proc/sys/vm/drop_caches"
FLOOR = ("walk", "rows")
REQUIRED = ("startup", *FLOOR, "sweep")
# Read once before the first round, not counted: what the floor reads, and the sweep's index.
WARM_UP = (*FLOOR, "sweep")


def approaches(sample, only=None):
    """Return ``(key, probe arguments, settings module)`` of what is measured in each round.

    ``only``: the keys to measure (the floor, the start-up and the dry sweep always are).
    """
    every = [
        ("startup", ["startup"], PROJECT_SETTINGS),
        ("walk", ["walk"], PROJECT_SETTINGS),
        ("rows", ["rows"], PROJECT_SETTINGS),
        ("sweep", [*SWEEP, "--dry-run"], PROJECT_SETTINGS),
        ("peer", PEER, PEER_SETTINGS),
        ("batched", ["batched"], PROJECT_SETTINGS),
        ("per_item", ["per-item", str(sample)], PROJECT_SETTINGS),
    ]
    return [entry for entry in every if only is None or entry[0] in only or entry[0] in REQUIRED]


def probe_env(database_url, media_root):
    """Return the environment of a measured process: no .env, DEBUG off (no query log), quiet logs.

    A real sweep moves what it removes into the quarantine, as it does by default in production;
    the quarantine lies beside the data set's MEDIA_ROOT, on the same disk (a rename).
    """
    return {
        **os.environ,
        "ENV_FILE": "",
        "DEBUG": "off",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-not-secret",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media_root),
        "MEDIA_CLEANUP_QUARANTINE_ROOT": os.path.join(os.path.dirname(media_root), "quarantine"),
    }


def measure(args, env, settings_module):
    measurement = run_probe(args, {**env, "DJANGO_SETTINGS_MODULE": settings_module})
    if measurement.exit_code:
        raise BenchError(f"{' '.join(args)} exited {measurement.exit_code}:\n{measurement.stderr[-3000:]}")
    return measurement


def bench_size(size, media_root, env, runs=3, sample=5000, log=print, only=None, drop_page_cache=False):
    """Generate a data set of ``size`` rows and files in ``media_root``; measure everything on it.

    With ``drop_page_cache``, the page cache is dropped once the data set is on disk (see
    ``drop_clean_pages``). Either way the floor's two passes and a dry run, not counted, read
    first what the floor and the sweep read. Without the dry run, the first round's dry run
    alone read from the disk what the floor never reads (the sweep's byte-order index): at
    ten million it took 31.6 s, and the dry runs after it on the same files 20.5 to 20.7 s.
    """
    from . import dataset

    started = time.perf_counter()
    dataset.reset()
    manifest = dataset.generate(size, media_root)
    log(f"size {size:,}: generated in {time.perf_counter() - started:.0f} s")
    settle()
    page_cache = drop_clean_pages() if drop_page_cache else "kept"
    log(f"  page cache: {page_cache}")
    for key, args, settings_module in approaches(sample):
        if key in WARM_UP:
            log(f"  warm-up {key}: {measure(args, env, settings_module).wall:.2f} s (not counted)")
    measurements = defaultdict(list)
    for round_number in range(1, runs + 1):
        for key, args, settings_module in approaches(sample, only):
            measurements[key].append(measure(args, env, settings_module))
            log(f"  round {round_number}/{runs} {key}: {measurements[key][-1].wall:.2f} s")
    real, real_floors = [], []
    floor = [entry for entry in approaches(sample) if entry[0] in FLOOR]
    for run_number in range(1, runs + 1):
        if run_number > 1:
            dataset.replant(manifest, media_root)
            settle()
        real_floors.append({key: measure(args, env, settings_module) for key, args, settings_module in floor})
        real.append(measure(SWEEP, env, PROJECT_SETTINGS))
        passes = sum(m.wall for m in real_floors[-1].values())
        log(f"  real sweep {run_number}/{runs}: {real[-1].wall:.2f} s (floor just before: {passes:.2f} s)")
    return SizeResult(manifest, dict(measurements), real, real_floors, page_cache)


def compile_project():
    """Compile the project's modules to bytecode once, as a deployed project has them.

    Python reads cached bytecode even when ``PYTHONDONTWRITEBYTECODE`` is set (as it is on the
    machine of docs/benchmarks.md), but then never writes it: each measured process would
    compile the project's modules again, the sweep's more than the floor's.
    """
    for package in PROJECT_PACKAGES:
        compileall.compile_dir(PROJECT_DIR / package, quiet=1)


def settle():
    """Write the data set's dirty pages to disk before measuring.

    Right after a million files are written, the kernel's write-back of them (and of the
    database's load) competes with whatever runs next, the sweep's listing included (it spills
    sorted names to temporary files). A nightly sweep meets a settled disk; so does every
    measurement here.
    """
    os.sync()


def drop_clean_pages(path=DROP_CACHES):
    """Drop the kernel's clean page cache, when this process may; return what was done, for the report.

    The data set's files hold a few bytes each, one 4 KiB block on disk: 4 GB at a million, 40 GB
    at ten million, written once and read by no approach (the floor and the sweep read folders,
    inodes and rows). Left in the page cache they compete with what is read: at ten million
    they outgrow a 24 GiB machine. Dropping the clean pages (the inodes and folder entries the
    kernel holds stay) leaves the memory to what the approaches read, at every size alike. It
    takes root; without it the cache is kept, and the report says so.
    """
    try:
        with open(path, "w") as handle:
            handle.write("1")
    except OSError as exc:
        return f"kept (cannot write {path}: {exc.strerror or exc})"
    return "dropped after the data set was written"


def ensure_database():
    """Create the benchmark's PostgreSQL database when it does not exist yet, and migrate it."""
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        name = connection.settings_dict["NAME"]
        # Django's own test-database creation connects the same way, to the server's "postgres" db.
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
    call_command("migrate", verbosity=0, interactive=False)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated sizes (rows = files)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each approach per size (median)")
    parser.add_argument("--sample", type=int, default=5000, help="files and rows of the per-item sample")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--workdir",
        help="keep the MEDIA_ROOTs here, to profile on later (default: a temporary folder, removed)",
    )
    parser.add_argument("--results", default=str(PROJECT_DIR / "bench" / "results"))
    parser.add_argument("--plot", help="write the time and memory plot (PNG) here, given two sizes or more")
    parser.add_argument(
        "--drop-page-cache",
        action="store_true",
        help="drop the kernel's clean page cache once each data set is written (needs root): the files' "
        "contents, which no approach reads, then leave the memory to what they do read",
    )
    parser.add_argument(
        "--only",
        help="comma-separated approaches besides the floor and the sweep (peer, batched, per_item); "
        "default: all. At ten million files the peer alone needs gigabytes of memory",
    )
    args = parser.parse_args(argv)
    args.sizes = [int(size.replace("_", "")) for size in args.sizes.split(",")]
    args.only = None if args.only is None else {key for key in args.only.split(",") if key}
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-media-")
    own_env = probe_env(args.database_url, workdir)
    os.environ.update({key: own_env[key] for key in ("ENV_FILE", "DEBUG", "SECRET_KEY", "DATABASE_URL")})
    os.environ["DJANGO_SETTINGS_MODULE"] = PROJECT_SETTINGS
    import django

    django.setup()
    from . import report

    ensure_database()
    compile_project()
    try:
        results = {}
        for size in args.sizes:
            media_root = os.path.join(workdir, f"media-{size}")
            shutil.rmtree(media_root, ignore_errors=True)  # a kept --workdir may hold an earlier one
            env = probe_env(args.database_url, media_root)
            results[size] = bench_size(
                size,
                media_root,
                env,
                args.runs,
                args.sample,
                only=args.only,
                drop_page_cache=args.drop_page_cache,
            )
        text = report.render(results, args.runs, args.sample)
        print(text)
        print(f"Written: {', '.join(report.save(results, text, args.results))}")
        if args.plot and len(results) > 1:
            report.plot(results, args.plot)
            print(f"Plot: {args.plot}")
    finally:
        if not args.workdir:
            # Slow at a million files (the deletes are disk-bound): done once, after the report.
            print(f"Removing the data sets in {workdir}", flush=True)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
