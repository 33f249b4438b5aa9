"""Read a stream of pages ahead, in a thread of its own, a bounded number of pages at most.

The sweep's streams wait on something else: the database computing and sending rows, the
listing process writing names. Read in turn by the merge, each wait added to the others, and
the listing stalled on a full pipe whenever the merge waited on the database. Read ahead, the
waits overlap with the merge and with one another (docs/benchmarks.md).
"""

import queue
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
