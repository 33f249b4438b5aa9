"""List the keys under a prefix of a bucket on several connections at once, in byte order.

A plain ListObjectsV2 listing is a chain: each page of up to 1,000 keys names where the next
begins, so 100 million keys take 100,000 round trips one after the other. Here each request
lists the first page of a *range* of keys, ``(after, until]`` in byte order, with ``StartAfter``;
ranges follow each other without gap or overlap, so the reader gets every key once, in order,
by reading them one after the other.

A page that stops short of its range's end leaves the rest of the range, which is cut into
pieces of about three quarters of a page each, sized by how densely the page's keys lay. Upload
keys begin with random hex digits (``uploads/<type>/<16 hex digits>-<name>``), so the density of
one page foretells that of the next; each piece's page corrects the estimate for the pieces
after it. The estimate only decides where cuts fall: every range is defined by string
comparison alone, so a cut in the wrong place costs a request, never a key, whatever the keys
look like.

Up to ``connections`` ranges, those nearest the reader, are listed at once, and a page waits
for the reader in memory: at most ``connections`` pages are held. With one connection nothing
is cut, and the listing is the plain chain of full pages.
"""

import bisect
import collections
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from .base import StorageUnavailable

logger = logging.getLogger(__name__)

# A position is a folder followed by this many lowercase hex digits: 16**12 positions, which
# tell apart keys even in a folder of billions.
DIGITS = 12
SPACE = 16**DIGITS
HEX = "0123456789abcdef"
# A piece is cut to hold this share of a page, so that the spread around the estimate seldom
# spills into a second request.
PIECE_SHARE = 0.75


def folder_of(key, prefix):
    """Return the folder of ``key`` right under ``prefix`` (``uploads/tours/``); None for a direct entry."""
    slash = key.find("/", len(prefix))
    return None if slash < 0 else key[: slash + 1]


def rank(name, folder):
    """Return how many positions of ``folder`` sort before ``name`` (None: the start of the key space).

    ``name`` may be any string: one outside the folder sorts before or after all its positions.
    """
    if name is None or name <= folder:
        return 0
    if not name.startswith(folder):
        return SPACE
    count = 0
    rest = name[len(folder) :]
    for index, char in enumerate(rest[:DIGITS]):
        count += bisect.bisect_left(HEX, char) * 16 ** (DIGITS - 1 - index)
        if char not in HEX:
            return count
    # The position spelt by the first digits sorts before a longer name, and is the name itself otherwise.
    return count + (len(rest) > DIGITS)


def position_key(folder, position):
    """Return the key of a position: the folder and the position in hex digits."""
    return f"{folder}{position:0{DIGITS}x}"


@dataclasses.dataclass(frozen=True)
class KeyRange:
    """The keys after ``after`` up to and including ``until``, in byte order; None is the start or the end.

    A piece of a ``Cut`` knows it, and the positions it spans, so that its page can tell the
    cut how densely keys lie there.
    """

    after: str | None
    until: str | None
    cut: "Cut | None" = None
    start: int = 0
    end: int | None = None

    def holds(self, key):
        """Return True when ``key``, which sorts after ``after``, is not past the range's end."""
        return self.until is None or key <= self.until


class Cut:
    """Cut ``(after, until]`` into ranges of about ``size`` keys each, in order, as they are asked for.

    ``density`` is keys per position of ``folder``; 0 leaves the whole as one range.
    """

    def __init__(self, after, until, folder="", density=0.0, size=1):
        self.after = after
        self.until = until
        self.folder = folder
        self.position = rank(after, folder)
        self.limit = SPACE if until is None else rank(until, folder)
        self.density = density
        self.size = size
        self.exhausted = False

    def next_range(self):
        """Return the next piece, or None after the last one, which ends at ``until``."""
        if self.exhausted:
            return None
        step = int(self.size / self.density) if self.density else SPACE
        # Positions up to ``rank(after)`` sort at or before ``after``, and from ``limit`` on at or
        # after ``until``: a position strictly between gives a key strictly between the two.
        position = self.position + max(1, step)
        if position >= self.limit:
            self.exhausted = True
            return KeyRange(self.after, self.until, self, self.position, None)
        upper = position_key(self.folder, position)
        piece = KeyRange(self.after, upper, self, self.position, position)
        self.after, self.position = upper, position
        return piece

    def observe(self, keys, positions):
        """Size the next pieces by what one piece's page showed: ``keys`` over ``positions``."""
        # Half a key for an empty piece: the next ones are at least twice as wide, so that a cut
        # misled by a dense page crosses empty stretches in few requests.
        self.density = (keys or 0.5) / max(1, positions)


@dataclasses.dataclass
class Page:
    """The ``(key, size, modified)`` of a range's first page, and whether the range goes on past it."""

    entries: list
    more: bool


@dataclasses.dataclass
class Request:
    """A range being listed; ``future`` gives its ``Page``."""

    key_range: KeyRange
    future: object
    settled: bool = False


class ParallelListing:
    """Yield ``(key, size, modified)`` of each key under ``prefix`` in byte order, ranges listed side by side.

    Raise ``StorageUnavailable`` when a request fails once botocore's retries are spent: the
    listing is then incomplete, and nothing may be decided on it.
    """

    def __init__(self, client, bucket, prefix, *, page_size, connections):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size
        self.connections = connections
        self.piece_size = max(1, int(page_size * PIECE_SHARE))

    def __iter__(self):
        # The plan lists, in key order, the ranges being listed (``Request``) and the cuts whose
        # pieces are still to be asked for (``Cut``): together they cover all the reader has not had.
        plan = collections.deque([Cut(None, None)])
        try:
            with ThreadPoolExecutor(self.connections, thread_name_prefix="s3-listing") as pool:
                while True:
                    self._settle(plan)
                    self._start(plan, pool)
                    if not plan:
                        return
                    head = plan[0]
                    page = head.future.result()
                    self._settle(plan)
                    plan.popleft()
                    self._start(plan, pool)
                    yield from page.entries
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}") from exc

    def _start(self, plan, pool):
        """Start the earliest ranges not yet asked for, until ``connections`` are listed or held."""
        listed = sum(isinstance(item, Request) for item in plan)
        index = 0
        while listed < self.connections and index < len(plan):
            item = plan[index]
            if isinstance(item, Request):
                index += 1
                continue
            key_range = item.next_range()
            if key_range is None:
                del plan[index]
                continue
            plan.insert(index, Request(key_range, pool.submit(self._list, key_range)))
            listed += 1

    def _settle(self, plan):
        """Take in every page that has come: tell its cut, and put the rest of its range right after it."""
        index = 0
        while index < len(plan):
            request = plan[index]
            index += 1
            if not isinstance(request, Request) or request.settled or not request.future.done():
                continue
            request.settled = True
            key_range, page = request.key_range, request.future.result()
            if key_range.end is not None:  # a piece of a cut, short of its last
                seen = rank(page.entries[-1][0], key_range.cut.folder) if page.more else key_range.end
                key_range.cut.observe(len(page.entries), seen - key_range.start)
            if page.more:
                plan.insert(index, self._rest(key_range, page.entries))

    def _rest(self, key_range, entries):
        """Return the cut of what a range holds after its first page, sized by that page."""
        last = entries[-1][0]
        folder = folder_of(last, self.prefix)
        if self.connections == 1 or folder is None:
            return Cut(last, key_range.until)
        keys = sum(key.startswith(folder) for key, _, _ in entries)
        positions = rank(last, folder) - rank(key_range.after, folder)
        if positions < keys:
            # More keys than positions between them: they do not begin with hex digits, and
            # their spread says nothing of the keys after them.
            return Cut(last, key_range.until)
        return Cut(last, key_range.until, folder, keys / positions, self.piece_size)

    def _list(self, key_range):
        """Return the first page of ``key_range`` (run on a connection of the pool)."""
        parameters = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": self.page_size}
        if key_range.after is not None:
            parameters["StartAfter"] = key_range.after
        response = self.client.list_objects_v2(**parameters)
        contents = response.get("Contents", ())
        entries = [
            (entry["Key"], entry["Size"], entry["LastModified"].timestamp())
            for entry in contents
            if key_range.holds(entry["Key"])
        ]
        truncated = response.get("IsTruncated", False)
        if truncated and not contents:
            raise StorageUnavailable(
                f"cannot list s3://{self.bucket}/{self.prefix}: the server said a page after "
                f"{key_range.after!r} was cut short, yet sent no key"
            )
        # Keys past the range's end belong to the next range: this one is complete.
        return Page(
            entries, more=truncated and len(entries) == len(contents) and entries[-1][0] != key_range.until
        )
