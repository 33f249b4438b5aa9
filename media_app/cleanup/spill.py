"""Candidates for deletion, kept in a temporary file so that memory stays flat."""

import json
import tempfile

from .batches import batched

# Kept in memory up to this size, then on disk.
IN_MEMORY_BYTES = 1 << 20


class Spill:
    """An append-then-read sequence of JSON records in a temporary file outside MEDIA_ROOT."""

    def __init__(self, directory=None):
        self._file = tempfile.SpooledTemporaryFile(
            max_size=IN_MEMORY_BYTES, mode="w+", encoding="utf-8", dir=directory
        )
        self.count = 0

    def append(self, *record):
        """Add one record (its fields as arguments) at the end."""
        self._file.write(json.dumps(record, ensure_ascii=False))
        self._file.write("\n")
        self.count += 1

    def __len__(self):
        return self.count

    def batches(self, size):
        """Yield the records in lists of at most ``size``, in the order they were added."""
        self._file.seek(0)
        yield from batched((json.loads(line) for line in self._file), size)

    def close(self):
        """Drop the records and their temporary file."""
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
