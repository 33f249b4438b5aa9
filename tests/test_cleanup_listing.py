import json
import os

from hypothesis import given
from hypothesis import strategies as st

from media_app.cleanup import listing


def test_the_listing_writes_nul_terminated_names_then_a_json_report(tmp_path, capsysbinary):
    (tmp_path / "b").mkdir()
    for name in ("b/x.jpg", "a-b.jpg", "new\nline.jpg"):
        (tmp_path / name).write_bytes(b"x")
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.jpg"), "wb"):
        pass

    code = listing.main([str(tmp_path)])

    out, err = capsysbinary.readouterr()
    assert code == 0
    assert out.split(b"\0") == [b"a-b.jpg", b"b/x.jpg", b"new\nline.jpg", b""]
    report = json.loads(err)
    assert report["unreadable"] == 1 and report["unreadable_sample"][0].endswith("bad\\xff.jpg")
    assert report["errors"] == []


def test_a_folder_that_cannot_be_listed_at_all_fails_the_listing(tmp_path, capsysbinary):
    code = listing.main([str(tmp_path / "missing")])

    _, err = capsysbinary.readouterr()
    assert code == 2
    assert json.loads(err)["failed"] is True


def test_only_the_symlinks_named_to_follow_are_walked_and_only_at_the_top(tmp_path, capsysbinary):
    top, elsewhere = tmp_path / "top", tmp_path / "elsewhere"
    (elsewhere / "deeper").mkdir(parents=True)
    (elsewhere / "a.jpg").write_bytes(b"x")
    (elsewhere / "deeper/b.jpg").write_bytes(b"x")
    os.symlink(elsewhere / "deeper", elsewhere / "link-below")
    top.mkdir()
    (top / "linked-b.jpg").write_bytes(b"x")
    for name in ("linked", "not-named", "dangling"):
        os.symlink(elsewhere if name != "dangling" else tmp_path / "missing", top / name)

    code = listing.main(["--follow=linked", "--follow=dangling", str(top)])

    out, _ = capsysbinary.readouterr()
    assert code == 0
    assert out.decode().split("\0")[:-1] == [
        "dangling",  # named, but leads to no folder: an entry like a file
        "linked-b.jpg",
        "linked/a.jpg",  # a followed link sorts as a folder, after "linked-b.jpg"
        "linked/deeper/b.jpg",
        "linked/link-below",  # below the top, a symlink is never followed
        "not-named",
    ]


def test_a_followed_type_folder_is_listed_and_a_symlink_below_is_a_file(tmp_path, capsysbinary):
    top, elsewhere = tmp_path / "top", tmp_path / "elsewhere"
    (top / "tours/2019/empty").mkdir(parents=True)
    (top / "tours/2019/a.jpg").write_bytes(b"a" * 1000)
    (top / "tours/b.jpg").write_bytes(b"b" * 24)
    elsewhere.mkdir()
    (elsewhere / "big.jpg").write_bytes(b"c" * 10_000)
    (elsewhere / "linked.jpg").write_bytes(b"d" * 5)
    os.symlink(elsewhere / "big.jpg", top / "tours/link.jpg")
    os.symlink(elsewhere, top / "guides")
    with open(os.path.join(os.fsencode(top), b"tours/bad\xff.jpg"), "wb") as handle:
        handle.write(b"e" * 7)  # not listed: counted as unreadable

    code = listing.main(["--follow=guides", str(top)])

    out, err = capsysbinary.readouterr()
    names = out.decode().split("\0")[:-1]
    assert code == 0 and names == [
        "guides/big.jpg",
        "guides/linked.jpg",
        "tours/2019/a.jpg",
        "tours/b.jpg",
        "tours/link.jpg",
    ]
    assert json.loads(err)["unreadable"] == 1


# Any text a file name can hold: no NUL, no lone surrogate.
NAME_TEXT = st.characters(blacklist_characters="\0", blacklist_categories=["Cs"])


@given(
    names=st.sets(st.text(NAME_TEXT, min_size=1, max_size=6)),
    runs=st.integers(min_value=1, max_value=6),
    read_size=st.integers(min_value=1, max_value=20),
    seed=st.randoms(use_true_random=False),
)
def test_spilled_runs_merge_back_into_one_byte_order(names, runs, read_size, seed):
    """Runs of any sizes, read back a few characters at a time, come back as one sorted sequence."""
    shuffled = sorted(names)
    seed.shuffle(shuffled)
    parts = [shuffled[index::runs] for index in range(runs)]
    spilled = []
    for part in parts:
        run = listing._spill_run(part)
        spilled.append(lambda size, run=run: run(read_size))

    lists = list(listing.merge_runs(spilled))

    assert [name for names in lists for name in names] == sorted(names)
    assert all(lists), "no empty list is given out"
