import os
import unicodedata

import pytest
from django.core.files.storage import FileSystemStorage
from django.utils.text import get_valid_filename
from hypothesis import given
from hypothesis import strategies as st
from storages.backends.s3 import S3Storage

from media_app import paths


@pytest.mark.parametrize(
    "name",
    ["uploads/tours/a.jpg", "a.jpg", "uploads/..hidden/x", "uploads/tours/x..y.jpg"],
)
def test_relative_names_inside_the_root_are_safe(name):
    assert paths.is_safe_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "uploads/../../x",
        "/etc/passwd",
        "uploads/tours/..",
        "a\x00b",
        "..\\x",
        "C:/x",
        "\\\\server\\x",
    ],
)
def test_names_that_leave_the_root_are_refused(name):
    assert not paths.is_safe_name(name)


def test_a_symlinked_folder_that_leaves_the_root_is_refused(media_root, outside_dir):
    os.symlink(outside_dir, media_root / "escape")
    storage = FileSystemStorage(location=media_root)

    assert not paths.InsideCheck(storage)("escape/file.txt")
    assert paths.InsideCheck(storage)("uploads/tours/file.txt")


def test_sanitise_keeps_the_extension_of_a_long_name():
    name = paths.sanitise_filename("a" * 300 + ".jpg")

    assert name == "a" * (paths.COMPONENT_MAX_BYTES - 4) + ".jpg"


GEORGIAN = "ა" * 98  # three bytes a letter
RUSSIAN = "Фотография_Тбилиси_" * 8  # two bytes a letter
EMOJI_FLAG_TONE = "🇬🇪👍🏽" * 40  # a flag is two characters, a thumb with its tone two
COMBINING = "q\u0323\u0307" * 90  # no precomposed form: a letter and two marks
NFD = unicodedata.normalize("NFD", "Ёлка_в_Тбилиси_" * 12)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (GEORGIAN + ".jpg", GEORGIAN + ".jpg"),
        (RUSSIAN + ".jpg", RUSSIAN + ".jpg"),
        (NFD + ".jpg", unicodedata.normalize("NFC", NFD) + ".jpg"),
        # What Django's storage drops from any name (get_valid_name): symbols and lone marks.
        ("Нарикала 🌄 🇬🇪.jpg", "Нарикала__.jpg"),
        ("🌄🌄🌄.jpg", "file.jpg"),
        ("q\u0323\u0307uiz.pdf", "quiz.pdf"),
    ],
)
def test_letters_and_digits_of_every_script_stay_in_the_stored_name(sent, stored):
    assert paths.sanitise_filename(sent, max_bytes=10_000, max_chars=10_000) == stored


@pytest.mark.parametrize("stem", [GEORGIAN, RUSSIAN, EMOJI_FLAG_TONE, COMBINING, NFD])
@pytest.mark.parametrize("max_bytes", [255, 100, 37])
def test_sanitise_cuts_by_utf8_bytes_and_keeps_the_extension(stem, max_bytes):
    whole = paths.sanitise_filename(stem + ".jpeg", max_bytes=10_000)

    name = paths.sanitise_filename(stem + ".jpeg", max_bytes=max_bytes)

    assert len(name.encode()) <= max_bytes
    assert name.endswith(".jpeg") and whole.startswith(name.removesuffix(".jpeg"))
    if name != whole:
        assert len(name.encode()) > max_bytes - 3, "no more was cut than a character needs"
    assert unicodedata.is_normalized("NFC", name)
    assert get_valid_filename(name) == name, "the storage keeps the name as it is"


@pytest.mark.parametrize("max_chars", [255, 50, 9])
def test_sanitise_cuts_to_a_number_of_characters(max_chars):
    name = paths.sanitise_filename("ფოტო" * 100 + ".png", max_bytes=10_000, max_chars=max_chars)

    assert len(name) == max_chars
    assert name.endswith(".png")


def test_nfc_and_nfd_forms_of_a_name_give_one_stored_name():
    composed = unicodedata.normalize("NFC", "Ёжик_café.jpg")
    decomposed = unicodedata.normalize("NFD", composed)

    assert decomposed != composed
    assert paths.sanitise_filename(decomposed) == paths.sanitise_filename(composed) == composed


@given(name=st.text(max_size=400), max_bytes=st.integers(30, 300), max_chars=st.integers(30, 300))
def test_a_sanitised_name_fits_both_limits_and_is_left_alone_by_the_storage(name, max_bytes, max_chars):
    sanitised = paths.sanitise_filename(name, max_bytes, max_chars)

    assert sanitised
    assert len(sanitised.encode()) <= max_bytes and len(sanitised) <= max_chars
    assert unicodedata.is_normalized("NFC", sanitised)
    assert get_valid_filename(sanitised) == sanitised
    assert "/" not in sanitised and "\\" not in sanitised


def test_hangul_jamo_joined_by_a_dropped_mark_come_out_composed():
    assert paths.sanitise_filename("\u1100\u0301\u1161.jpg") == "\uac00.jpg"


# Each entry is one user-perceived character; a cut must never fall inside one.
CLUSTERS = ["e\u0301", "q\u0323\u0307", "👍🏽", "🇬🇪", "ა", "Ё", "a", "🌄\ufe0f"]


@pytest.mark.parametrize("max_bytes", range(0, 40))
def test_shorten_cuts_between_user_perceived_characters(max_bytes):
    clusters = CLUSTERS * 3
    name = "".join(clusters) + ".jpg"

    short = paths.shorten(name, max_chars=255, max_bytes=max_bytes + 4)

    assert short.endswith(".jpg")
    kept = short.removesuffix(".jpg")
    whole = ["".join(clusters[:count]) for count in range(len(clusters) + 1)]
    assert kept in whole, f"{kept!r} ends inside a character"
    longer = whole[whole.index(kept) + 1]
    assert len(longer.encode()) > max_bytes, "no more was cut than needed"


def test_shorten_keeps_a_name_that_fits_and_drops_an_extension_that_cannot():
    assert paths.shorten("Ёлка.jpg", max_chars=8) == "Ёлка.jpg"
    assert paths.shorten("a." + "b" * 20, max_chars=10) == "a." + "b" * 8


def test_base_name_drops_folders_and_unprintable_characters_as_djangos_parser_does():
    assert paths.base_name("C:\\Users\\nino\\Ё\x00лка\u202egpj.exe") == "Ёлкаgpj.exe"
    assert paths.base_name(unicodedata.normalize("NFD", "a/b/Ёлка.jpg")) == "Ёлка.jpg"


def test_name_room_leaves_space_for_the_suffix_of_a_taken_name(media_root):
    prefix = "uploads/tours/0123456789abcdef-"

    max_bytes, max_chars = paths.name_room(prefix, FileSystemStorage(location=media_root), 255)

    assert max_bytes == 255 - len("0123456789abcdef-") - 8
    assert max_chars == 255 - len(prefix) - 8


def test_name_room_counts_the_object_key_with_its_location():
    prefix = "uploads/tours/0123456789abcdef-"
    storage = S3Storage(bucket_name="media", location="/".join(["ქალაქი"] * 45))  # 854 bytes

    max_bytes, _ = paths.name_room(prefix, storage, 255)

    assert max_bytes == 1024 - 854 - len("/" + prefix) - 8
    assert paths.name_room(prefix, S3Storage(bucket_name="media"), 255)[0] == 255 - 17 - 8


@pytest.fixture
def storage(media_root):
    return FileSystemStorage(location=media_root)


@pytest.fixture
def other_disk(tmp_path):
    """A folder outside MEDIA_ROOT where an operator moved a type folder, then linked it back."""
    path = tmp_path / "disk2"
    (path / "drivers/2019").mkdir(parents=True)
    return path


def test_names_under_a_symlinked_type_folder_resolve_inside_its_real_folder(storage, media_root, other_disk):
    (media_root / "uploads").mkdir()
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")

    assert paths.InsideCheck(storage)("uploads/drivers/a.jpg")
    assert paths.InsideCheck(storage)("uploads/drivers/2019/a.jpg")
    assert paths.InsideCheck(storage)("uploads/tours/a.jpg")


def test_a_symlinked_folder_below_a_symlinked_type_folder_is_refused(
    storage, media_root, other_disk, outside_dir
):
    (media_root / "uploads").mkdir()
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    os.symlink(outside_dir, other_disk / "drivers/escape")
    os.symlink(other_disk, other_disk / "drivers/up")

    assert not paths.InsideCheck(storage)("uploads/drivers/escape/x.jpg")
    assert not paths.InsideCheck(storage)("uploads/drivers/up/x.jpg"), "one level up is outside too"


@pytest.mark.parametrize(
    "target",
    ["uploads/guides", "uploads/guides/2019", "uploads", "media root", "above the media root"],
)
def test_a_type_folder_that_gives_files_two_names_is_not_trusted(target, storage, media_root):
    (media_root / "uploads/guides/2019").mkdir(parents=True)
    real = {"media root": media_root, "above the media root": media_root.parent}.get(
        target, media_root / target
    )
    os.symlink(real, media_root / "uploads/drivers")

    assert not paths.InsideCheck(storage)("uploads/drivers/x.jpg")
    assert paths.InsideCheck(storage)("uploads/guides/x.jpg")


def test_uploads_as_a_symlink_is_trusted_unless_it_holds_the_media_root(storage, media_root, tmp_path):
    (tmp_path / "disk2/uploads/tours").mkdir(parents=True)
    os.symlink(tmp_path / "disk2/uploads", media_root / "uploads")
    assert paths.InsideCheck(storage)("uploads/tours/a.jpg")
    assert paths.InsideCheck(storage)("uploads/a.jpg")

    os.unlink(media_root / "uploads")
    os.symlink(tmp_path, media_root / "uploads")
    assert not paths.InsideCheck(storage)("uploads/media/uploads/a.jpg")
    assert not paths.InsideCheck(storage)("uploads/a.jpg")


def test_a_check_resolves_each_folder_once(storage, media_root, other_disk, monkeypatch):
    """One realpath per folder (and one per layout folder) per batch, not one per name."""
    (media_root / "uploads/tours").mkdir(parents=True)
    os.symlink(other_disk / "drivers", media_root / "uploads/drivers")
    resolved = []
    realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: resolved.append(path) or realpath(path, **kw))
    check = paths.InsideCheck(storage)

    for n in range(50):
        for folder in ("tours", "drivers", "drivers/2019"):
            assert check(f"uploads/{folder}/{n}.jpg")

    # The media root, uploads/, uploads/tours, uploads/drivers and uploads/drivers/2019.
    assert len(resolved) == 5


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("uploads", True),
        ("uploads/", True),
        ("uploads/drivers", True),
        ("uploads/drivers/", True),
        ("uploads/readme.txt", True),
        ("uploads/drivers/a.jpg", False),
        ("uploads/drivers/2019/", False),
        ("uploadsx/a", False),
        ("other/uploads", False),
        ("", False),
    ],
)
def test_uploads_and_its_direct_entries_are_layout_entries(name, kept):
    assert paths.is_layout_entry(name) is kept
