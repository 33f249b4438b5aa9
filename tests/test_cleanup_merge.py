"""The merge on plain pages: no database, no storage."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_app.cleanup.merge import OutOfOrder, Stream, windows


def paged(items, cuts):
    """Cut the list ``items`` into pages at the positions ``cuts``; each page is ``(names, payload)``."""
    bounds = [0, *sorted({cut for cut in cuts if 0 < cut < len(items)}), len(items)]
    return [
        ([name for name, _ in items[a:b]], [payload for _, payload in items[a:b]])
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]


def cut_windows(*streams):
    """Return the windows of ``streams`` (lists of items), each as one list of items per stream."""
    return [
        [
            list(zip(names, payload, strict=True)) if payload is not None else names
            for names, payload in window
        ]
        for window in windows(streams)
    ]


def by_name(cut):
    """Return ``{name: [items of each stream]}`` of windows in which no name lies in two windows."""
    found = {}
    for window in cut:
        names = {item[0] if isinstance(item, tuple) else item for stream in window for item in stream}
        assert not names & found.keys(), "a name in two windows"
        for name in names:
            found[name] = [
                [item for item in stream if (item[0] if isinstance(item, tuple) else item) == name]
                for stream in window
            ]
    return found


def test_each_name_lies_in_one_window_with_every_item_that_carries_it():
    files = Stream(paged([("uploads/a", 1), ("uploads/b", 2), ("uploads/d", 3)], [1]), True, "files")
    rows = Stream(
        paged([("uploads/b", "x"), ("uploads/b", "y"), ("uploads/b", "z"), ("uploads/c", "w")], [1, 2]),
        False,
        "rows",
    )

    assert by_name(cut_windows(files, rows)) == {
        "uploads/a": [[("uploads/a", 1)], []],
        "uploads/b": [[("uploads/b", 2)], [("uploads/b", "x"), ("uploads/b", "y"), ("uploads/b", "z")]],
        "uploads/c": [[], [("uploads/c", "w")]],
        "uploads/d": [[("uploads/d", 3)], []],
    }


def test_pages_without_payload_give_names_only():
    cut = list(windows([Stream([(["uploads/a", "uploads/b"], None)], True, "files")]))

    assert [page for window in cut for page in window] == [(["uploads/a"], None), (["uploads/b"], None)]


def test_empty_streams_and_pages_give_nothing():
    assert list(windows([Stream([], True, "files"), Stream([([], [])], False, "rows")])) == []


names = st.lists(st.sampled_from(["uploads/a", "uploads/a-b", "uploads/a/b", "uploads/თ", "uploads/Z", "x"]))


@given(
    files=st.sets(st.sampled_from(["uploads/a", "uploads/a-b", "uploads/a/b", "uploads/თ", "uploads/Z"])),
    rows=names,
    file_cuts=st.lists(st.integers(0, 6)),
    row_cuts=st.lists(st.integers(0, 6)),
)
def test_windows_follow_one_another_and_hold_each_name_whole(files, rows, file_cuts, row_cuts):
    files = sorted(files)
    rows = sorted(rows)
    streams = [
        Stream(paged([(name, i) for i, name in enumerate(files)], file_cuts), True, "files"),
        Stream(paged([(name, i) for i, name in enumerate(rows)], row_cuts), False, "rows"),
    ]

    cut = cut_windows(*streams)

    assert [item for window in cut for item in window[0]] == [(name, i) for i, name in enumerate(files)]
    assert [item for window in cut for item in window[1]] == [(name, i) for i, name in enumerate(rows)]
    spans = [{name for stream in window for name, _ in stream} for window in cut]
    for earlier, later in zip(spans, spans[1:], strict=False):
        assert max(earlier) < min(later), "a name in two windows"


def test_names_compare_by_code_point_as_utf8_bytes_do():
    names = sorted(
        ["uploads/tours/a-b.jpg", "uploads/tours/a/b.jpg", "uploads/tours/თ.jpg", "uploads/tours/Z"]
    )

    cut = windows([Stream([(names, None)], True, "files")])

    assert [name for window in cut for name in window[0][0]] == names
    assert names == sorted(names, key=str.encode)


@pytest.mark.parametrize(
    ("pages", "unique"),
    [
        ([(["uploads/b", "uploads/a"], None)], False),
        ([(["uploads/b"], None), (["uploads/a"], None)], False),
        ([(["uploads/a", "uploads/a"], None)], True),
        ([(["uploads/a"], None), (["uploads/a"], None)], True),
    ],
    ids=["within a page", "across pages", "a file listed twice", "a file listed twice across pages"],
)
def test_a_stream_out_of_order_stops_the_merge(pages, unique):
    with pytest.raises(OutOfOrder, match="the files are not sorted by name: 'uploads/a' came after"):
        list(windows([Stream(pages, unique, "files")]))


def test_a_name_may_repeat_where_the_stream_allows_it():
    pages = [(["uploads/a", "uploads/a"], None), (["uploads/a", "uploads/b"], None)]

    assert by_name(cut_windows(Stream(pages, False, "rows"))) == {
        "uploads/a": [["uploads/a", "uploads/a", "uploads/a"]],
        "uploads/b": [["uploads/b"]],
    }
