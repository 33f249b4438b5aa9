"""Run a probe in a child process and measure it: wall time, and the peak RSS it reports (its own
plus that of the sweep's listing process, which runs beside it, or of its files process)."""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Measurement:
    """One child process: wall seconds, peak resident memory, exit code, its report and output."""

    wall: float
    peak_rss_mib: float
    exit_code: int
    report: dict
    stdout: str
    stderr: str

    def json_output(self):
        """Return the JSON object a ``--json`` command printed last on stdout."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_probe(args, env):
    """Run ``python -m bench.probe ARGS`` with ``env``; return its Measurement."""
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as folder:
        report_path = os.path.join(folder, "report.json")
        with open(os.path.join(folder, "out"), "w+") as out, open(os.path.join(folder, "err"), "w+") as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.probe", *args],
                cwd=PROJECT_DIR,
                env={**env, "BENCH_REPORT": report_path},
                stdout=out,
                stderr=err,
            )
            exit_code = process.wait()
            wall = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        report = {}
        if os.path.exists(report_path):
            with open(report_path, encoding="utf-8") as handle:
                report = json.load(handle)
    return Measurement(wall, peak_mib(report), exit_code, report, stdout, stderr)


def peak_mib(report):
    """Return the peak memory of a measured process and its children, from a probe's report."""
    # The sweep's listing runs as a child process beside its collect phase: their peaks add up.
    # Its files process (a fork) runs after the listing has ended, during the removals: it
    # counts with the sweep's memory of the same moment, by the pages it does not share. Were
    # the two ever seen at once, every peak would add up.
    peak = report.get("peak_rss_mib", 0.0) + report.get("children_peak_rss_mib", 0.0)
    if report.get("forked_beside_a_program"):
        peak += report.get("forked_private_peak_mib", 0.0)
    else:
        peak = max(peak, report.get("forked_peak_total_mib", 0.0))
    return peak
