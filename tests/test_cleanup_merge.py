"""The merge on plain iterators: no database, no storage."""

from types import SimpleNamespace

import pytest

from media_app.cleanup.merge import OutOfOrder, align, merged


def stored(*names):
    return iter([SimpleNamespace(name=name) for name in names])


def aligned(references=(), orphans=(), files=()):
    """Return ``[(name, references, orphan pks, stored name or None)]`` of the three streams."""
    return [
        (name, count, list(pks), here.name if here else None)
        for name, count, pks, here in align(iter(references), iter(orphans), stored(*files))
    ]


def test_each_name_comes_once_with_what_each_stream_says_of_it():
    references = ["uploads/a", "uploads/a", "uploads/b", "uploads/c"]
    orphans = [("uploads/a", 1), ("uploads/d", 2), ("uploads/d", 3)]
    files = ["uploads/b", "uploads/d", "uploads/e"]

    assert aligned(references, orphans, files) == [
        ("uploads/a", 2, [1], None),
        ("uploads/b", 1, [], "uploads/b"),
        ("uploads/c", 1, [], None),
        ("uploads/d", 0, [2, 3], "uploads/d"),
        ("uploads/e", 0, [], "uploads/e"),
    ]


def test_names_compare_by_code_point_as_utf8_bytes_do():
    names = sorted(
        ["uploads/tours/a-b.jpg", "uploads/tours/a/b.jpg", "uploads/tours/თ.jpg", "uploads/tours/Z"]
    )

    assert [name for name, *_ in aligned(files=names)] == names
    assert names == sorted(names, key=str.encode)


def test_empty_streams_give_nothing():
    assert aligned() == []


@pytest.mark.parametrize(
    "streams",
    [
        {"references": ["uploads/b", "uploads/a"]},
        {"orphans": [("uploads/b", 1), ("uploads/a", 2)]},
        {"files": ["uploads/b", "uploads/a"]},
        {"files": ["uploads/a", "uploads/a"]},
    ],
    ids=["references", "orphans", "files", "a file listed twice"],
)
def test_a_stream_out_of_order_stops_the_merge(streams):
    with pytest.raises(OutOfOrder, match="not sorted by name"):
        aligned(**streams)


def test_merged_interleaves_sorted_streams():
    assert list(merged([iter("adg"), iter("beh"), iter("cf")])) == list("abcdefgh")
    assert list(merged([iter("ab")])) == ["a", "b"]
    assert list(merged([])) == []
