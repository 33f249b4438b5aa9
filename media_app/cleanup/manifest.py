"""The quarantine's own records: a run's ``meta.json`` and its manifest, written and read in one place.

Each run that removed something has a folder (or, on object storage, a key prefix) named by
its run id, holding the files under their original paths and a manifest of the rows::

    <run id>/meta.json                 {"run_id": ..., "created": <POSIX time>, ...}
    <run id>/manifest-00001.jsonl      one JSON object per line: a file or a deleted row
    <run id>/uploads/tours/ab12-x.jpg  the file, at its original path
    <run id>/size.json                 {"bytes": ...}: what the run moved in, written when it ended

``size.json`` spares later sweeps measuring each kept file; a restore removes it before it
moves anything back, a purge before it deletes anything, and without it (a run killed midway,
a record that does not parse) the files are measured one by one again.

A manifest part is written before the files of its batch move and before its rows go, so a
run killed midway still describes everything it touched. The quarantine describes itself: a
restore needs no run history, only the run id.

Both records are files anyone with access to the quarantine can edit, break or forge, so
nothing read here is trusted: a ``meta.json`` must be a JSON object with a ``created`` POSIX
time, and each manifest line a JSON object that names a plain file under ``uploads/`` or
describes a media row the database can take back. What fails comes with its reason, so that
one bad line costs that line only, and one bad ``meta.json`` its run only.
"""

import dataclasses
import json
import reprlib
import uuid
from datetime import UTC, datetime

from ..models import Media
from ..paths import in_uploads

META = "meta.json"
SIZE_RECORD = "size.json"
SIZE_RECORD_LIMIT = 1024  # bytes read of a size.json: ours are some twenty
MANIFEST_PREFIX = "manifest-"
# The largest value a PositiveBigIntegerField (a row's ``size``) holds, plus one.
SIZE_LIMIT = 2**63
RECORD_TEXTS = ("file", "original_name", "mime_type", "caption")

_shown = reprlib.Repr()
_shown.maxstring = 120
_shown.maxother = 120


def encode_meta(run_id, now, extra):
    """Return the bytes of the ``meta.json`` of a run opened at ``now``: its id, its time, ``extra`` keys."""
    return json.dumps({**extra, "run_id": str(run_id), "created": now.timestamp()}).encode()


def part_name(part):
    """Return the name of the run's manifest part number ``part``."""
    return f"{MANIFEST_PREFIX}{part:05d}.jsonl"


def encode_part(entries):
    """Return the bytes of a manifest part: one JSON object per line, text kept as it is."""
    return "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()


def is_record_name(name):
    """Return True for the name (relative to the run) of one of the run's records, not a file."""
    return name in (META, SIZE_RECORD) or name.startswith(MANIFEST_PREFIX)


def encode_size(size):
    """Return the bytes of a run's ``size.json``: the bytes of the files it moved in."""
    return json.dumps({"bytes": size}).encode()


def parse_size(raw):
    """Return the bytes a ``size.json`` records, from its bytes; raise ``ValueError`` saying what is wrong."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    size = record.get("bytes") if isinstance(record, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < SIZE_LIMIT:
        raise ValueError('has no "bytes" count (a whole number of bytes)')
    return size


def parse_meta(raw):
    """Return the dict a ``meta.json`` holds, from its bytes; raise ``ValueError`` saying what is wrong."""
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError("is not a JSON object")
    if not is_timestamp(meta.get("created")):
        raise ValueError('has no "created" time (a POSIX timestamp)')
    return meta


def is_timestamp(value):
    """Return True for a number that is a point in time (finite, within the calendar)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return False
    return True


def is_uuid_text(value):
    """Return True for a UUID in the text form ``str(uuid)`` writes (a run id, a row's id)."""
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError, AttributeError):
        return False


@dataclasses.dataclass(slots=True)
class ManifestLine:
    """One line of a manifest part: where it is, and its entry or why it cannot be restored."""

    where: str
    entry: dict | None = None
    problem: str = ""


def manifest_lines(part, raw_lines):
    """Yield a ``ManifestLine`` for each non-blank line (bytes) of the manifest part named ``part``."""
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        where = f"{part} line {number}"
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            yield ManifestLine(where, problem=f"malformed manifest line: not JSON ({exc})")
            continue
        problem = entry_problem(entry)
        if problem:
            yield ManifestLine(where, problem=f"malformed manifest line: {problem}")
        else:
            yield ManifestLine(where, entry)


def entry_problem(entry):
    """Return why a manifest entry cannot be restored, or "" when it can."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    kind = entry.get("kind")
    if kind == "file":
        name = entry.get("name")
        if not (isinstance(name, str) and in_uploads(name)):
            return f'"name" is not a plain name under uploads/: {_shown.repr(name)}'
        return ""
    if kind == "record":
        return record_problem(entry)
    return f'"kind" is neither "file" nor "record": {_shown.repr(kind)}'


def record_problem(entry):
    """Return why a row's entry cannot re-create the row, or "" when it can."""
    for key in ("id", "object_id"):
        if not is_uuid_text(entry.get(key)):
            return f'"{key}" is not a UUID: {_shown.repr(entry.get(key))}'
    content_type = entry.get("content_type")
    if not (
        isinstance(content_type, list)
        and len(content_type) == 2
        and all(isinstance(part, str) for part in content_type)
    ):
        return f'"content_type" is not [app label, model]: {_shown.repr(content_type)}'
    for key in RECORD_TEXTS:
        value, limit = entry.get(key), Media._meta.get_field(key).max_length
        # A NUL is refused by PostgreSQL's text types, and a longer text by the column.
        if not (isinstance(value, str) and len(value) <= limit and "\x00" not in value):
            return f'"{key}" is not a text of at most {limit} characters: {_shown.repr(value)}'
    size = entry.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < SIZE_LIMIT:
        return f'"size" is not a number of bytes: {_shown.repr(size)}'
    created_at = entry.get("created_at")
    if not is_aware_time(created_at):
        return f'"created_at" is not an ISO date and time with an offset: {_shown.repr(created_at)}'
    return ""


def is_aware_time(value):
    """Return True for an ISO 8601 date and time with its offset from UTC."""
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).utcoffset() is not None
    except ValueError:
        return False
