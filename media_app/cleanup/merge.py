"""The merge at the heart of the sweep: streams sorted by name, cut into windows that line up.

Names compare as Python compares ``str`` (code points, which for UTF-8 is byte order): the
database is asked for that order, and the storages list in it.

The streams come in pages, as they are read: a page of rows from the database, a block of
names from the listing. ``windows()`` cuts every stream at one common bound after another,
so that a window holds, from each stream, exactly the items whose names fall in the same
range. The sweep then compares whole windows with set operations, which run in C, and looks
name by name only where the streams disagree. Looked at name by name in Python, the merge of
a million names took longer than listing them (docs/benchmarks.md).
"""

import bisect
import dataclasses
from collections.abc import Iterable, Sequence


class OutOfOrder(Exception):
    """A stream that must be sorted by name was not: the merge cannot be trusted."""


@dataclasses.dataclass
class Stream:
    """One sorted stream of pages ``(names, payload)``; ``payload`` is aligned with ``names``, or None.

    ``unique``: a name may come only once (a listing); otherwise a name may repeat (the rows
    that reference it). ``what`` names the stream in the error when it is out of order.
    """

    pages: Iterable[tuple[Sequence[str], Sequence | None]]
    unique: bool
    what: str


class _Pending:
    """What a stream has fetched and not yet handed out in a window."""

    __slots__ = ("stream", "pages", "names", "payload", "done", "last")

    def __init__(self, stream):
        self.stream = stream
        self.pages = iter(stream.pages)
        self.names = []
        self.payload = None
        self.done = False
        self.last = None  # the last name of the last page fetched

    def fetch(self):
        """Append the stream's next non-empty page, checked for order; mark the stream done at its end."""
        for names, payload in self.pages:
            if not names:
                continue
            names = list(names)
            self.check(names)
            self.last = names[-1]
            self.names = self.names + names if self.names else names
            if payload is not None:
                payload = list(payload)
                self.payload = self.payload + payload if self.payload else payload
            return
        self.done = True

    def check(self, names):
        unique = self.stream.unique
        if self.last is not None and (names[0] < self.last or (unique and names[0] == self.last)):
            raise self.out_of_order(self.last, names[0])
        if names != sorted(names) or (unique and len(set(names)) != len(names)):
            for before, after in zip(names, names[1:], strict=False):
                if after < before or (unique and after == before):
                    raise self.out_of_order(before, after)

    def out_of_order(self, before, after):
        return OutOfOrder(f"the {self.stream.what} are not sorted by name: {after!r} came after {before!r}")

    def take(self, bound):
        """Hand out the names below ``bound`` (all of them when ``bound`` is None), with their payload."""
        cut = len(self.names) if bound is None else bisect.bisect_left(self.names, bound)
        names, self.names = self.names[:cut], self.names[cut:]
        if not names:
            return names, []
        payload = None
        if self.payload is not None:
            payload, self.payload = self.payload[:cut], self.payload[cut:]
        return names, payload


def windows(streams):
    """Yield one list per window: for each of ``streams``, in order, ``(names, payload)`` of one range.

    ``payload`` is None for a stream whose pages carry none, and an empty list with no names.

    The ranges follow one another without gap or overlap, so that a name lies in one window
    only, with every item of every stream that carries it. A stream out of order (or a name
    that comes twice in a ``unique`` stream) raises ``OutOfOrder``.
    """
    pending = [_Pending(stream) for stream in streams]
    for stream in pending:
        stream.fetch()
    while True:
        # Each window ends where the first of the streams' fetched pages ends: every name below
        # that bound has been fetched from every stream.
        ends = [stream.names[-1] for stream in pending if not stream.done]
        bound = min(ends) if ends else None
        window = [stream.take(bound) for stream in pending]
        if any(names for names, _ in window):
            yield window
        if bound is None:
            return
        for stream in pending:
            # What such a stream holds now is its names equal to the bound: fetch on.
            if not stream.done and stream.last == bound:
                stream.fetch()
