import json
import os

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
    assert report["peak_rss_kib"] > 0, "the listing reports its own peak memory"


def test_a_folder_that_cannot_be_listed_at_all_fails_the_listing(tmp_path, capsysbinary):
    code = listing.main([str(tmp_path / "missing")])

    _, err = capsysbinary.readouterr()
    assert code == 2
    assert json.loads(err)["failed"] is True
