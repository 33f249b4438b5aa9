"""Reading a stream ahead in a thread: same items, same errors, bounded, and stopped on close."""

import threading

import pytest

from media_app.cleanup.prefetch import Prefetched


def test_gives_the_items_in_order():
    assert list(Prefetched(iter(range(100)), depth=3)) == list(range(100))


def test_raises_the_streams_error_where_the_stream_would():
    def failing():
        yield 1
        raise ValueError("the database went away")

    pages = Prefetched(failing(), depth=2)

    assert next(pages) == 1
    with pytest.raises(ValueError, match="went away"):
        next(pages)
    assert list(pages) == []


def test_reads_no_more_than_depth_ahead_and_close_stops_and_closes_the_stream():
    produced, closed, release = [], threading.Event(), threading.Event()

    def stream():
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    pages = Prefetched(stream(), depth=2)
    assert next(pages) == 0
    for _ in range(50):
        if len(produced) >= 4:
            break
        release.wait(0.01)

    assert len(produced) <= 4, "one taken, two queued, one waiting for room"
    pages.close()
    assert closed.is_set() and not pages.thread.is_alive()
    assert len(produced) < 1000
