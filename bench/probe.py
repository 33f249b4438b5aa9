"""Run one measured task in this process; write its report (queries, peak RSS, findings) to ``BENCH_REPORT``.

``python -m bench.probe TASK [ARGS...]`` with TASK one of: ``walk`` (loads no Django), ``startup``,
``rows``, ``batched``, ``per-item SAMPLE``, or ``command NAME [OPTIONS...]``, which runs a management
command exactly as ``manage.py`` does. Queries are the SQL statements sent through Django's cursors
of every connection, counted by Django's public ``execute_wrappers`` hook.
"""

import glob
import json
import os
import sys
import threading


def count_queries(report):
    """Count the statements every connection of this process executes."""
    from django.db.backends.signals import connection_created

    def counter(execute, sql, params, many, context):
        report["queries"] += 1
        return execute(sql, params, many, context)

    def install(sender, connection, **kwargs):
        if counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(counter)

    connection_created.connect(install, weak=False)


def watch_children_memory(report, interval=0.01):
    """Record the peak memory of the children this process starts from now on.

    A child that runs a program of its own (the sweep's listing): its ``VmHWM``, read from
    ``/proc`` every ``interval`` seconds; it only grows, so the last reading misses at most what
    the child grew in its last interval. Not ``ru_maxrss`` of ``RUSAGE_CHILDREN``: Linux carries
    the parent's size at fork over the exec into it. A child forked to go on in Python (the
    sweep's files process) shares this process's pages until either writes to them: only its
    private pages are its own, read from ``smaps_rollup``. Its peak is
    ``forked_private_peak_mib``, and the largest sum of this process's resident memory and
    those pages at one reading ``forked_peak_total_mib``; ``forked_beside_a_program`` says that
    a fork and a child of the first kind ran at once. Return a function that stops the watch.
    """
    stop = threading.Event()
    own = command_line("self")
    already_running = set(children())  # not the task's: started before it

    def watch():
        while not stop.wait(interval):
            kinds = set()
            for pid in set(children()) - already_running:
                try:
                    # Until a child has exec'd its program it shares (or copies) this process's
                    # memory, and its VmHWM is this process's. Read in this order, a command line
                    # of its own proves that the status read next is the program's.
                    if command_line(pid) == own:
                        kind, private = "forked", private_mib(pid)
                        readings = {
                            "forked_private_peak_mib": private,
                            "forked_peak_total_mib": private + resident_mib(),
                        }
                    else:
                        kind, readings = "program", {"children_peak_rss_mib": peak_rss_mib(pid)}
                except OSError:
                    continue  # it ended meanwhile
                kinds.add(kind)
                for key, value in readings.items():
                    report[key] = max(report.get(key, 0.0), value)
            if len(kinds) > 1:  # a fork beside the listing: their memory adds up
                report["forked_beside_a_program"] = True

    watcher = threading.Thread(target=watch, name="children-memory", daemon=True)
    watcher.start()

    def finish():
        stop.set()
        watcher.join()

    return finish


def children():
    """Return the process ids of this process's children, from ``/proc/self/task/*/children``."""
    pids = []
    for path in glob.glob("/proc/self/task/*/children"):
        try:
            with open(path, encoding="ascii") as listed:
                pids += listed.read().split()
        except OSError:
            continue  # a thread that ended meanwhile
    return pids


def run_task(task, args, report):
    """Run ``task``; return the process's exit code."""
    media_root = os.environ["MEDIA_ROOT"]
    if task == "walk":
        from .walk import walk_files

        report["items"] = sum(1 for _ in walk_files(media_root))
        return 0
    count_queries(report)
    if task == "command":
        from django.core.management import execute_from_command_line

        stop_watching = watch_children_memory(report)
        try:
            execute_from_command_line(["manage.py", *args])
        except SystemExit as exc:  # sys.exit(None) is a success, sys.exit("text") a failure
            return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        finally:
            stop_watching()
        return 0
    import django

    django.setup()
    from django.db import connection

    from . import baselines

    if task == "startup":
        connection.ensure_connection()
    elif task == "rows":
        report.update(baselines.stream_rows())
    elif task == "batched":
        report.update(baselines.batched(media_root))
    elif task == "per-item":
        report.update(baselines.per_item(media_root, int(args[0])))
    else:
        raise SystemExit(f"unknown task {task!r}")
    return 0


def command_line(pid):
    """Return a process's command line as ``/proc`` shows it (NUL-separated bytes)."""
    with open(f"/proc/{pid}/cmdline", "rb") as listed:
        return listed.read()


def peak_rss_mib(pid="self"):
    """Return a process's peak resident set size since its exec (``VmHWM``), in MiB."""
    # Not ru_maxrss: Linux carries the parent's size at fork time over the exec into it.
    return _status_mib(pid, "VmHWM:")


def resident_mib(pid="self"):
    """Return a process's resident set size now (``VmRSS``), in MiB."""
    return _status_mib(pid, "VmRSS:")


def _status_mib(pid, field):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/{pid}/status")


def private_mib(pid):
    """Return the memory only this process holds (its private pages, clean and dirty), in MiB."""
    private = 0
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    return private / 1024


def main(argv):
    report = {"queries": 0}
    try:
        code = run_task(argv[0], argv[1:], report)
    finally:
        report["peak_rss_mib"] = peak_rss_mib()
        with open(os.environ["BENCH_REPORT"], "w", encoding="utf-8") as handle:
            json.dump(report, handle)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
