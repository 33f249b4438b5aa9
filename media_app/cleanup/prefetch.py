"""Read the sweep's streams ahead, in threads of their own, within bounded memory.

The sweep's streams wait on something else: the database computing and sending rows, the
listing process writing names. Read in turn by the merge, each wait added to the others, and
the listing stalled on a full pipe whenever the merge waited on the database. Read ahead, the
waits overlap with the merge and with one another (docs/benchmarks.md).

``Prefetched`` reads a stream of pages a bounded number of pages ahead. ``Drained`` empties a
pipe as fast as it is written, so that the process writing it never waits for the reader:
what the reader has not taken yet waits in memory up to a bound, then in a temporary file.
"""

import collections
import errno
import os
import queue
import tempfile
import threading

_END = object()


class Prefetched:
    """Iterate ``pages`` in a thread of its own, holding at most ``depth`` pages not yet taken.

    An exception the stream raises is raised again by ``next()``, where the stream would have
    raised it. ``close()`` stops the thread, then closes ``pages``.
    """

    def __init__(self, pages, depth, name="prefetch"):
        self.pages = pages
        self.queue = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.finished = False
        self.thread = threading.Thread(target=self._read, name=name, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for page in self.pages:
                if not self._put(page):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the reader, who raises it as its own
            self._put(exc)

    def _put(self, item):
        """Queue ``item``, waiting for room; return False when the reader closed the stream."""
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self.finished:
            raise StopIteration
        item = self.queue.get()
        if item is _END:
            self.finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        return item

    def close(self):
        """Stop reading ahead and close the stream (its cursor, its listing process)."""
        self.stopping.set()
        self.thread.join()
        self.finished = True
        close = getattr(self.pages, "close", None)
        if close:
            close()


class Drained:
    """Read a byte stream to its end in a thread of its own, as fast as it comes; hand it out in order.

    The listing process walks the files while the sweep waits on the database: at its start,
    before the first rows arrive, for up to a second at a million rows. Through a pipe alone,
    the listing would stop as soon as the pipe is full and lose that second. Here it never
    waits: what ``read()`` has not taken yet is held in memory up to ``memory`` bytes, and in
    a temporary file (in the temporary folder, as the sweep's spills) past that. Memory stays
    bounded whatever the lead, and the file is dropped once the reader has caught up.
    """

    def __init__(self, stream, memory, block_size=1 << 17, name="drain"):
        self.stream = stream
        self.memory = memory
        self.block_size = block_size
        self.blocks = collections.deque()  # read and held in memory, oldest first
        self.held = 0  # bytes in ``blocks``
        # Once something is in the file, everything after it goes there too, until the reader
        # has taken the whole file: the order of the stream is kept.
        self.overflow = None
        self.written = 0  # bytes written to ``overflow``
        self.taken = 0  # bytes of ``overflow`` read back
        self.ended = False
        self.error = None
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self.thread.start()

    def _drain(self):
        try:
            while block := self.stream.read1(self.block_size):
                with self.condition:
                    self._keep(block)
                    self.condition.notify()
        except BaseException as exc:  # handed to the reader, who raises it as its own
            with self.condition:
                self.error = exc
                self.condition.notify()
            return
        with self.condition:
            self.ended = True
            self.condition.notify()

    def _keep(self, block):
        if self.overflow is None and self.held + len(block) <= self.memory:
            self.blocks.append(block)
            self.held += len(block)
            return
        if self.overflow is None:
            self.overflow = tempfile.TemporaryFile(prefix="cleanup-listing-")
        left = memoryview(block)
        while left:  # a write may take fewer bytes than it was given (a disk filling up)
            written = os.pwrite(self.overflow.fileno(), left, self.written)
            if not written:
                raise OSError(errno.ENOSPC, "the temporary folder took no more of the listing")
            left = left[written:]
            self.written += written

    def read(self):
        """Return the next bytes of the stream, ``b""`` at its end; raise what reading raised."""
        with self.condition:
            while True:
                if self.blocks:
                    block = self.blocks.popleft()
                    self.held -= len(block)
                    return block
                if self.overflow is not None:
                    if self.taken < self.written:
                        block = os.pread(self.overflow.fileno(), self.block_size, self.taken)
                        self.taken += len(block)
                        return block
                    self._drop_overflow()
                if self.error is not None:
                    raise self.error
                if self.ended:
                    return b""
                self.condition.wait()

    def _drop_overflow(self):
        self.overflow.close()
        self.overflow = None
        self.written = self.taken = 0

    def close(self):
        """Wait for the thread, which ends with the stream (close or kill its writer first); drop the file."""
        self.thread.join()
        with self.condition:
            if self.overflow is not None:
                self._drop_overflow()
