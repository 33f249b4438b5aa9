"""List the files of a folder tree in byte order of their names, in bounded memory.

Standard library only, so that the sweep runs it as a process of its own
(``python -m media_app.cleanup.listing FOLDER``) on the second core while the main process
streams rows from the database.

Output: on stdout, each file's name relative to FOLDER followed by a NUL byte (NUL cannot
occur in a file name); at the end, on stderr, one JSON object
``{"listed": count, "unreadable": count, "unreadable_sample": [...], "errors": [...]}``: how
many names it wrote (the reader checks it read as many), and what could not be listed. It
asks the disk for nothing but the folders' entries: no ``stat`` per file.

Symlinks are listed as files and never followed, except those directly in FOLDER named by
``--follow NAME``: they are walked as folders (the sweep checks them first, see
``backends.filesystem.linked_type_folders``). Names that are not valid UTF-8 are counted and
left out. A folder that cannot be listed is reported in ``errors`` and skipped.
"""

import argparse
import json
import os
import sys
import tempfile
from bisect import bisect_right
from itertools import compress
from operator import methodcaller

# Entries of one folder held in memory before sorted runs spill to disk.
DEFAULT_CHUNK = 25_000
# Characters of spilled runs read back at a time, across all the runs of a folder being merged.
MERGE_BUFFER = 1 << 19
MIN_READ = 1 << 12
# Names written to the pipe at a time.
OUTPUT_BATCH = 4096
SAMPLE_SIZE = 100
_IS_FOLDER = methodcaller("endswith", "/")
MAX_ERRORS = 100


class Report:
    """What the listing reports at its end: what it could not list."""

    def __init__(self):
        self.listed = 0  # names written to stdout: the reader checks it read as many
        self.unreadable = 0
        self.unreadable_sample = []
        self.errors = []

    def unreadable_name(self, path):
        """Count a name that is not valid UTF-8; keep the first ones as a sample for the log."""
        self.unreadable += 1
        if len(self.unreadable_sample) < SAMPLE_SIZE:
            self.unreadable_sample.append(os.fsencode(path).decode("utf-8", "backslashreplace"))

    def error(self, message):
        """Record a folder that could not be listed; keep the first ones only."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    def as_dict(self):
        """Return the report the listing writes on stderr at its end."""
        return {
            "listed": self.listed,
            "unreadable": self.unreadable,
            "unreadable_sample": self.unreadable_sample,
            "errors": self.errors,
        }


def is_utf8(name):
    """Return True for a name that decoded cleanly (no surrogate escapes from bad bytes)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def walk(top, report, chunk=DEFAULT_CHUNK, follow=frozenset()):
    """Yield the names of the files under ``top``, relative to it, in byte order, in lists.

    The symlinks directly in ``top`` named in ``follow`` are walked as folders when they lead to
    one. Raises OSError when ``top`` itself cannot be listed.
    """
    blocks = sorted_entries(top, report, chunk, follow)
    yield from _walk(top, "", blocks, report, chunk)


def _walk(top, prefix, blocks, report, chunk):
    files = []
    for block in blocks:
        # Folders are few: the files between two of them are taken a batch at a time, without
        # a step per name in Python.
        start = 0
        for folder_at in [*compress(range(len(block)), map(_IS_FOLDER, block)), None]:
            end = len(block) if folder_at is None else folder_at
            for piece in range(start, end, OUTPUT_BATCH):
                files += [prefix + name for name in block[piece : min(piece + OUTPUT_BATCH, end)]]
                if len(files) >= OUTPUT_BATCH:
                    yield files
                    files = []
            if folder_at is None:
                break
            if files:
                yield files
                files = []
            start = folder_at + 1
            folder = prefix + block[folder_at]
            try:
                children = sorted_entries(os.path.join(top, folder), report, chunk)
            except OSError as exc:
                report.error(f"cannot list {folder}: {exc.strerror or exc}")
                continue
            yield from _walk(top, folder, children, report, chunk)
    if files:
        yield files


def sorted_entries(path, report, chunk=DEFAULT_CHUNK, follow=frozenset()):
    """Return a folder's entries, in lists, in an order that makes the whole walk byte-ordered.

    A folder sorts as ``name/``, so that ``a/b`` comes after ``a-b`` as it does in a plain
    string sort of the full names; so does a symlink to a folder named in ``follow``. Past
    ``chunk`` entries, sorted runs spill to temporary files and are merged back lazily.
    """
    runs, names = [], []
    append = names.append
    with os.scandir(path) as scan:
        for entry in scan:
            name = entry.name
            if not (name.isascii() or is_utf8(name)):
                report.unreadable_name(os.path.join(path, name))
                continue
            if entry.is_dir(follow_symlinks=bool(follow) and name in follow):
                append(name + "/")
            else:
                append(name)
            if len(names) >= chunk:
                runs.append(_spill_run(names))
                names = []
                append = names.append
    names.sort()
    if not runs:
        return [names]
    return merge_runs([*runs, lambda size: iter([names])])


def _spill_run(names):
    """Write ``names`` sorted to a temporary file; return a function that reads them back in lists."""
    names.sort()
    handle = tempfile.TemporaryFile(mode="w+", encoding="utf-8", newline="")  # names may hold "\r"
    handle.write("\0".join(names))
    handle.seek(0)
    return lambda size: read_nul_separated(handle, size)


def merge_runs(runs):
    """Yield the names of sorted runs (of distinct names) in one sorted order, in lists.

    A run is a function that takes a read size and returns its names in sorted lists. Each
    list given out holds every name up to the smallest last name of the lists being read,
    sorted in C: the merge makes no comparison per name in Python, as ``heapq.merge`` does
    (a tenth of the listing's time at a million files, measured). The runs share
    ``MERGE_BUFFER`` characters of reading, whatever their number.
    """
    size = max(MIN_READ, MERGE_BUFFER // len(runs))
    heads = []  # [the list being read, the index of its first name not given out, the run]
    for run in runs:
        lists = run(size)
        first = next(lists, None)
        if first:
            heads.append([first, 0, lists])
    while heads:
        horizon = min(names[-1] for names, _, _ in heads)
        merged = []
        for head in heads:
            names, start, _ = head
            cut = bisect_right(names, horizon, start)
            merged += names[start:cut]
            head[1] = cut
        merged.sort()
        yield merged
        going_on = []
        for head in heads:
            if head[1] == len(head[0]):
                following = next(head[2], None)
                if following is None:
                    continue
                head[0], head[1] = following, 0
            going_on.append(head)
        heads = going_on


def read_nul_separated(handle, size):
    """Yield the NUL-separated records of a text file in lists, reading ``size`` characters at a time."""
    with handle:
        tail = ""
        while block := handle.read(size):
            parts = (tail + block).split("\0")
            tail = parts.pop()
            if parts:
                yield parts
        if tail:
            yield [tail]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--follow", action="append", default=[], help="a symlink in FOLDER to walk")
    options = parser.parse_args(argv)
    follow = frozenset(options.follow)
    report = Report()
    out = sys.stdout.buffer
    try:
        for names in walk(options.folder, report, options.chunk, follow):
            out.write(("\0".join(names) + "\0").encode("utf-8"))
            report.listed += len(names)
        out.flush()
    except BrokenPipeError:
        return 1  # the sweep stopped reading: nothing more to do
    except OSError as exc:
        report.error(f"cannot list {options.folder}: {exc.strerror or exc}")
        sys.stderr.write(json.dumps({**report.as_dict(), "failed": True}))
        return 2
    sys.stderr.write(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
