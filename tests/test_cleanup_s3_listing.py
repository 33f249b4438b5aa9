"""The S3 listing side by side: its cuts cover every key once, and it lists what the plain chain lists.

The cut's arithmetic is checked on its own with drawn keys; the listing itself runs against
the session's S3-protocol server (moto), with small pages so that ranges span several pages.
"""

import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from django.core.files.storage import default_storage
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from media_app.cleanup.backends import backend_for, s3
from media_app.cleanup.backends.base import StorageUnavailable
from media_app.cleanup.backends.s3_listing import (
    DIGITS,
    HEX,
    SPACE,
    Cut,
    ParallelListing,
    folder_of,
    position_key,
    rank,
)
from media_app.cleanup.engine import run_cleanup
from tests import factories
from tests.backends import later
from tests.test_cleanup_s3 import SLOW_DOWN, TWO_ATTEMPTS, Body, InFlight, Requests, use_storage

PREFIX = "uploads/"
FOLDER = "uploads/tours/"
# Characters on either side of each boundary of byte order that a cut meets: before "0", the
# digits, between "9" and "a", the hex letters, past "f", uppercase, past ASCII.
EDGE_CHARACTERS = "-./09:AZ_`afgz~éა"
# Keys at the edges of the key space under uploads/: direct entries, folder markers, the first
# and last positions of a folder, names with no hex prefix, uppercase, non-ASCII (UTF-8 byte
# order is code point order), keys the storage could not have written, and keys outside.
EDGE_KEYS = [
    "uploads/",
    "uploads//x",
    "uploads/0",
    "uploads/a.txt",
    "uploads/zz",
    "uploads/tours/",
    "uploads/tours//x",
    "uploads/tours/0",
    "uploads/tours/000000000000",
    "uploads/tours/0000000000000000-first.jpg",
    "uploads/tours/0-x",
    "uploads/tours/9",
    "uploads/tours/9fffffffffffffff-x",
    "uploads/tours/A.jpg",
    "uploads/tours/Photo.jpg",
    "uploads/tours/Z",
    "uploads/tours/_x",
    "uploads/tours/a",
    "uploads/tours/a000000000000000-x",
    "uploads/tours/f",
    "uploads/tours/ffffffffffff",
    "uploads/tours/ffffffffffffffff-last.jpg",
    "uploads/tours/g",
    "uploads/tours/no-prefix.jpg",
    "uploads/tours/é.jpg",
    "uploads/tours/ა.jpg",
    "uploads/tours/\U0001f600.jpg",
    "uploads/toursX",
    "uploads/ტურები/0123456789abcdef-ა.jpg",
    "uploads/ტურები/x",
    "uploadsX",
    "other/0123456789abcdef-x.jpg",
]


def upload_keys(count, folders=("tours", "guides", "users")):
    """Return ``count`` keys shaped as uploads are (random hex, then a name), spread over ``folders``."""
    return [f"uploads/{folders[n % len(folders)]}/{secrets.token_hex(8)}-photo-{n}.jpg" for n in range(count)]


def put_keys(client, bucket, keys):
    """Store each key as it is (not through the storage, which would normalise odd ones); a body per key."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=body_of(key)), keys))


def body_of(key):
    return b"x" * (len(key.encode()) % 7)


def listed(client, bucket, *, page_size, connections, prefix=PREFIX):
    """Return the keys, sizes and times a ``ParallelListing`` yields."""
    return list(ParallelListing(client, bucket, prefix, page_size=page_size, connections=connections))


def plain_chain(client, bucket, prefix=PREFIX):
    """Return ``(key, size)`` of each key under ``prefix`` as botocore's paginator lists them."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [(entry["Key"], entry["Size"]) for page in pages for entry in page.get("Contents", ())]


# -- the cut, on its own ---------------------------------------------------------------------

names_in_folder = st.builds(
    lambda digits, rest: FOLDER + digits + rest,
    st.text(alphabet=HEX, max_size=DIGITS + 2),
    st.text(alphabet=EDGE_CHARACTERS + HEX, max_size=3),
)
any_names = st.one_of(names_in_folder, st.text(alphabet=EDGE_CHARACTERS + HEX + "sturo", max_size=20))


@given(name=any_names, position=st.integers(0, SPACE - 1))
def test_a_names_rank_counts_exactly_the_positions_that_sort_before_it(name, position):
    count = rank(name, FOLDER)

    assert (position_key(FOLDER, position) < name) == (position < count)
    # The threshold itself, which a drawn position seldom hits: the last position before, the first not.
    assert count == 0 or position_key(FOLDER, count - 1) < name
    assert count == SPACE or position_key(FOLDER, count) >= name


@given(position=st.integers(0, SPACE - 1))
def test_a_positions_key_has_that_rank(position):
    assert rank(position_key(FOLDER, position), FOLDER) == position


def test_a_folder_is_the_first_segment_under_the_prefix():
    assert folder_of("uploads/tours/0a-x.jpg", PREFIX) == "uploads/tours/"
    assert folder_of("uploads//x", PREFIX) == "uploads//"
    assert folder_of("uploads/readme.txt", PREFIX) is None


def probes(bounds):
    """Return keys on, just before and just after each bound."""
    found = set()
    for bound in bounds:
        found |= {bound, bound + "\x00", bound + "0", bound + "-", bound[:-1]}
        found |= {bound[:-1] + chr(ord(bound[-1]) + step) for step in (-1, 1) if ord(bound[-1]) + step > 0}
    return found


def holds(key_range, key):
    return (key_range.after is None or key_range.after < key) and key_range.holds(key)


@hypothesis_settings(max_examples=300)
@given(
    bounds=st.lists(any_names, min_size=2, max_size=2, unique=True).map(sorted),
    open_ends=st.tuples(st.booleans(), st.booleans()),
    density=st.one_of(st.just(0.0), st.floats(1e-15, 1.0)),
    size=st.integers(1, 40),
    keys=st.lists(any_names, max_size=60),
)
def test_a_cut_covers_its_range_once_whatever_the_keys(bounds, open_ends, density, size, keys):
    after, until = (None if open_end else bound for open_end, bound in zip(open_ends, bounds, strict=True))
    cut = Cut(after, until, FOLDER, density, size)
    pieces = []
    while (piece := cut.next_range()) is not None:
        pieces.append(piece)
        assert len(pieces) < 2000, "the cut never ends"
        if piece.end is not None:  # as the listing tells the cut what each piece held
            held = [key for key in keys if holds(piece, key)]
            cut.observe(len(held), piece.end - piece.start)

    assert pieces[0].after == after and pieces[-1].until == until
    for before, following in zip(pieces, pieces[1:], strict=False):
        assert before.until == following.after
        assert before.after is None or before.after < before.until
    every_key = set(keys) | probes(piece.until for piece in pieces[:-1])
    for key in every_key:
        inside = (after is None or after < key) and (until is None or key <= until)
        holders = [
            piece for piece in pieces if (piece.after is None or piece.after < key) and piece.holds(key)
        ]
        assert len(holders) == (1 if inside else 0), key


# -- the listing, on the S3-protocol server --------------------------------------------------


def test_side_by_side_lists_exactly_what_the_plain_chain_lists(s3_backend):
    """Edge keys among upload keys, in pages of 3: every number of connections lists the same."""
    client, bucket = s3_backend.client, s3_backend.bucket
    put_keys(client, bucket, EDGE_KEYS + upload_keys(150))
    expected = plain_chain(client, bucket)
    pages = -(-len(expected) // 3)

    for connections in (1, 2, 4, 16):
        requests = Requests(client)
        entries = listed(client, bucket, page_size=3, connections=connections)
        client.meta.events.unregister("before-send.s3", requests.before_send)

        assert [(key, size) for key, size, _ in entries] == expected, connections
        if connections == 1:
            assert len(requests.sent) == pages, "one connection lists the plain chain of full pages"
        else:
            assert len(requests.sent) > pages, "ranges were cut where no page ended"


@pytest.mark.parametrize(("page_size", "connections"), [(3, 2), (4, 5)])
def test_keys_exactly_on_the_cuts_bounds_are_listed_once(s3_backend, page_size, connections):
    """Keys at every 16**10-th position: each cut then falls exactly on a key, which its range ends with."""
    client, bucket = s3_backend.client, s3_backend.bucket
    keys = [position_key(FOLDER, number * 16**10) for number in range(1, 80)]
    put_keys(client, bucket, keys)
    starts = []
    client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **kwargs: starts.append(params.get("StartAfter")),
    )

    entries = listed(client, bucket, page_size=page_size, connections=connections)

    assert [key for key, _, _ in entries] == keys
    within = {start for start in starts if start is not None and start <= keys[-1]}
    assert within <= set(keys), "every range, cut or continued, began right after a key"
    assert len(starts) > len(keys) / page_size, "ranges were cut"


@hypothesis_settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(
        st.one_of(
            st.builds(
                lambda hexes, name: FOLDER + hexes + name, st.text(HEX, max_size=17), st.text(EDGE_CHARACTERS)
            ),
            st.text(alphabet=EDGE_CHARACTERS + "sturo", min_size=1, max_size=12).map(
                lambda rest: PREFIX + rest
            ),
        ),
        max_size=40,
        unique=True,
    ),
    page_size=st.integers(1, 4),
    connections=st.integers(2, 5),
)
def test_any_keys_are_listed_once_and_in_byte_order(s3_backend, keys, page_size, connections):
    client, bucket = s3_backend.client, f"drawn-{uuid.uuid4().hex}"
    client.create_bucket(Bucket=bucket)
    put_keys(client, bucket, keys)

    entries = listed(client, bucket, page_size=page_size, connections=connections)

    assert [key for key, _, _ in entries] == sorted(keys)


@pytest.mark.django_db(transaction=True)
def test_a_sweep_finds_the_same_on_any_number_of_connections(s3_backend, settings, monkeypatch):
    monkeypatch.setattr(s3, "PAGE_SIZE", 3)
    owner = factories.tour()
    factories.media(owner)
    orphan_owner = factories.tour()
    factories.media(orphan_owner)
    factories.delete_behind_the_orms_back(orphan_owner)
    live = [factories.media(factories.guide()) for _ in range(4)]
    s3_backend.client.delete_object(Bucket=s3_backend.bucket, Key=live[0].file.name)  # a missing file
    put_keys(s3_backend.client, s3_backend.bucket, EDGE_KEYS + upload_keys(60))

    results = {}
    for connections in (1, 16):
        settings.MEDIA_CLEANUP_S3_LIST_CONCURRENCY = connections
        result = run_cleanup(dry_run=True, force=True, now=later())
        results[connections] = (result.status, result.figures(), result.sample)

    assert results[1] == results[16]
    status, figures, _ = results[16]
    assert status == "ok" and figures["missing_files"] == 1 and figures["orphaned_records"] == 1
    assert figures["files_checked"] > 60


def test_no_more_ranges_than_connections_run_ahead_of_the_reader(s3_backend):
    """At most ``connections`` ranges are listed or held past the reader: one page each, no more."""
    client, bucket = s3_backend.client, s3_backend.bucket
    put_keys(client, bucket, upload_keys(240))
    starts = []
    client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **kwargs: starts.append(params.get("StartAfter")),
    )

    position, most_ahead = None, 0
    for key, _, _ in ParallelListing(client, bucket, PREFIX, page_size=4, connections=3):
        position = key
        ahead = [start for start in list(starts) if start is not None and start >= position]
        most_ahead = max(most_ahead, len(ahead))

    assert most_ahead == 3
    assert len(starts) > 240 / 4, "the listing was cut into ranges"


def test_requests_at_once_never_exceed_the_setting_and_reach_it(s3_backend, settings, monkeypatch):
    monkeypatch.setattr(s3, "PAGE_SIZE", 4)
    settings.MEDIA_CLEANUP_S3_LIST_CONCURRENCY = 3
    put_keys(s3_backend.client, s3_backend.bucket, upload_keys(150))
    in_flight = InFlight(s3_backend.client, "ListObjectsV2")

    names = [stored.name for stored in backend_for(default_storage).walker().iter_files()]

    assert len(names) == 150 and names == sorted(names)
    assert in_flight.most == 3


def test_a_pool_smaller_than_the_setting_bounds_the_requests_and_says_so(
    s3_backend, s3_server, settings, monkeypatch, caplog
):
    monkeypatch.setattr(s3, "PAGE_SIZE", 3)
    settings.MEDIA_CLEANUP_S3_LIST_CONCURRENCY = 8
    small_pool = Config(max_pool_connections=2, s3={"addressing_style": "path"})
    client = use_storage(settings, s3_server, s3_backend.bucket, client_config=small_pool)
    put_keys(client, s3_backend.bucket, upload_keys(60))
    in_flight = InFlight(client, "ListObjectsV2")

    assert len(list(backend_for(default_storage).walker().iter_files())) == 60

    assert in_flight.most == 2
    assert "Listing on 2 connections, not MEDIA_CLEANUP_S3_LIST_CONCURRENCY=8" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_range_that_cannot_be_listed_fails_the_run_before_anything_is_deleted(
    s3_backend, s3_server, settings, monkeypatch
):
    """Simulated: every range but the first is throttled past the attempts (moto never throttles)."""
    monkeypatch.setattr(s3, "PAGE_SIZE", 2)
    strays = upload_keys(12)
    put_keys(s3_backend.client, s3_backend.bucket, strays)
    client = use_storage(settings, s3_server, s3_backend.bucket, client_config=TWO_ATTEMPTS)
    client.meta.events.register("before-send.s3.ListObjectsV2", throttle_ranges)

    result = run_cleanup(force=True, now=later())

    assert (result.status, result.exit_code, result.deleted_files) == ("failed", 1, 0)
    assert "StorageUnavailable: cannot list s3://" in result.message and "SlowDown" in result.message
    assert s3_backend.missing(strays) == []


def throttle_ranges(request, **kwargs):
    """Answer 503 SlowDown to every listing request that starts after a key."""
    if "start-after=" in request.url:
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, Body(SLOW_DOWN))
    return None


EMPTY_CUT_SHORT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name><Prefix>uploads/</Prefix>'
    b"<KeyCount>0</KeyCount><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated></ListBucketResult>"
)


def test_a_page_cut_short_without_a_key_ends_the_listing_instead_of_skipping_the_rest(s3_backend):
    """Simulated: a server that says more keys follow but sends none would stop a chain unnoticed."""
    client = s3_backend.client
    put_keys(client, s3_backend.bucket, upload_keys(5))
    client.meta.events.register(
        "before-send.s3.ListObjectsV2",
        lambda request, **kwargs: AWSResponse(request.url, 200, {}, Body(EMPTY_CUT_SHORT)),
    )

    with pytest.raises(StorageUnavailable, match="cut short, yet sent no key"):
        listed(client, s3_backend.bucket, page_size=3, connections=2)


def test_closing_the_listing_early_waits_for_its_requests_and_leaves_no_thread(s3_backend):
    put_keys(s3_backend.client, s3_backend.bucket, upload_keys(30))
    before = threading.active_count()

    entries = iter(ParallelListing(s3_backend.client, s3_backend.bucket, PREFIX, page_size=2, connections=4))
    next(entries)
    entries.close()

    assert threading.active_count() == before
