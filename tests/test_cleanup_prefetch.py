"""Reading streams ahead in threads: same items, same errors, bounded memory, stopped on close."""

import os
import threading
import time

import pytest

from media_app.cleanup.prefetch import Drained, Prefetched


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


# -- Drained: a pipe emptied as fast as it is written -------------------------------------------


def _blocks(count, size=1000):
    """Return ``count`` distinct blocks of bytes, each naming its number."""
    return [f"{n:08d}".encode().ljust(size, b".") for n in range(count)]


def _writer(blocks):
    """Start a thread writing ``blocks`` into a new pipe; return (its read end as a file, the thread)."""
    read_end, write_end = os.pipe()

    def write():
        with os.fdopen(write_end, "wb") as out:
            for block in blocks:
                out.write(block)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return os.fdopen(read_end, "rb"), thread


def _read_all(drained):
    data = bytearray()
    while block := drained.read():
        data += block
    return bytes(data)


def test_the_writer_never_waits_for_the_reader_and_memory_stays_bounded():
    blocks = _blocks(2_000)  # 2 MB: thirty times what a pipe holds by default
    stream, writer = _writer(blocks)
    drained = Drained(stream, memory=10_000, block_size=4096)

    writer.join(timeout=30)
    assert not writer.is_alive(), "the writer waited on a full pipe: nobody had read yet"
    drained.thread.join(timeout=30)
    assert drained.held <= 10_000
    assert drained.written > 1_900_000, "the rest waits on disk"

    assert _read_all(drained) == b"".join(blocks)
    drained.close()
    assert drained.overflow is None


def test_short_writes_to_the_overflow_lose_nothing(monkeypatch):
    """A write may take fewer bytes than it was given; the rest must follow, not be skipped."""
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, bytes(data[:333]), offset))
    blocks = _blocks(200)
    stream, writer = _writer(blocks)
    drained = Drained(stream, memory=1_000, block_size=4096)
    writer.join(timeout=30)
    drained.thread.join(timeout=30)

    assert drained.written > 190_000, "the overflow took it"
    assert _read_all(drained) == b"".join(blocks)
    drained.close()


def test_an_overflow_that_takes_nothing_is_an_error_not_a_loop(monkeypatch):
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: 0)
    blocks = _blocks(50)  # less than a pipe holds: the writer is done at once
    stream, writer = _writer(blocks)
    drained = Drained(stream, memory=1_000, block_size=4096)

    with pytest.raises(OSError, match="took no more of the listing"):
        _read_all(drained)
    writer.join(timeout=30)
    drained.close()


def test_the_order_holds_as_the_reader_falls_behind_and_catches_up():
    blocks = _blocks(3_000, size=97)
    stream, writer = _writer(blocks)
    drained = Drained(stream, memory=2_000, block_size=512)
    data = bytearray()
    while block := drained.read():
        data += block
        if len(data) % 7 == 0:
            time.sleep(0.001)  # now behind the writer, now level with it

    assert bytes(data) == b"".join(blocks)
    writer.join()
    drained.close()


def test_a_read_error_is_raised_after_what_was_read_before_it():
    class Failing:
        def __init__(self):
            self.blocks = [b"first", b"second"]

        def read1(self, size):
            if self.blocks:
                return self.blocks.pop(0)
            raise OSError("the pipe broke")

    drained = Drained(Failing(), memory=100)

    assert drained.read() + drained.read() == b"firstsecond"
    with pytest.raises(OSError, match="the pipe broke"):
        drained.read()
    drained.close()
