"""The round-trip count of the S3 listing, small: the harness counts, models and reports, never a timing.

A thousand keys in pages of 20 stand for the benchmark's 100,000 in pages of 1,000: enough
pages per owner folder for the listing to cut ranges, few enough for moto to store quickly.
"""

import math
import time

import pytest

from bench import s3_round_trips
from bench.delay_proxy import DelayProxy
from media_app.cleanup.backends import s3

SIZES = (600, 1200)
PAGE_SIZE = 20
CONNECTIONS = 4


@pytest.fixture(scope="module")
def listings(s3_server):
    """Measure the small bucket once for the module, both ways, at both sizes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(s3, "PAGE_SIZE", PAGE_SIZE)
        return s3_round_trips.measure(s3_server, SIZES, CONNECTIONS, delay=0.01, log=lambda line: None)


def test_both_listings_yield_every_key_at_every_size(listings):
    assert [(listing.keys, listing.connections) for listing in listings] == [
        (600, 1),
        (600, CONNECTIONS),
        (1200, 1),
        (1200, CONNECTIONS),
    ]
    assert all(listing.page_size == PAGE_SIZE for listing in listings)


def test_one_connection_is_the_plain_chain_one_round_trip_per_page(listings):
    for listing in listings[::2]:
        pages = math.ceil(listing.keys / PAGE_SIZE)
        assert (listing.requests, listing.critical_path, listing.most_at_once) == (pages, pages, 1)
        assert s3_round_trips.critical_path(listing, listing.keys) == pages


def test_side_by_side_shortens_the_critical_path_within_the_connections(listings):
    for sequential, side_by_side in zip(listings[::2], listings[1::2], strict=True):
        assert side_by_side.critical_path < sequential.critical_path
        assert side_by_side.requests >= sequential.requests, "cut ranges cost requests, never keys"
        assert 1 < side_by_side.most_at_once <= CONNECTIONS


def test_the_model_fits_the_largest_measurement_and_grows_linearly(listings):
    largest = listings[-1]

    assert s3_round_trips.critical_path(largest, largest.keys) == largest.critical_path
    at_one, at_two, at_three = (s3_round_trips.critical_path(largest, n * 1_000_000) for n in (1, 2, 3))
    assert abs((at_three - at_two) - (at_two - at_one)) <= 1
    assert at_one < math.ceil(1_000_000 / PAGE_SIZE) / 2


def test_the_report_has_the_measurements_and_the_model_at_every_scale(listings):
    text = s3_round_trips.render(listings, delay=0.01)

    tables = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(tables) == 2 + len(listings) + 2 + len(s3_round_trips.MODEL_OBJECTS)
    assert "| 100,000,000 | 5,000,000 |" in text, "one connection: a round trip per page of 20"
    assert all(line.count("|") == tables[0].count("|") for line in tables[: 2 + len(listings)])


def test_the_proxy_holds_each_request_and_counts_those_at_once(s3_server):
    client = s3_round_trips.storage_for(s3_server, "proxied", 4).connection.meta.client
    client.create_bucket(Bucket="proxied")
    client.put_object(Bucket="proxied", Key="uploads/x", Body=b"abc")

    with DelayProxy(s3_server, delay=0.05) as proxy:
        proxied = s3_round_trips.storage_for(proxy.url, "proxied", 4).connection.meta.client
        started = time.monotonic()
        assert proxied.get_object(Bucket="proxied", Key="uploads/x")["Body"].read() == b"abc"
        assert proxied.head_object(Bucket="proxied", Key="uploads/x")["ContentLength"] == 3
        assert proxied.list_objects_v2(Bucket="proxied")["KeyCount"] == 1
        held = time.monotonic() - started

    assert (proxy.requests, proxy.most_at_once) == (3, 1)
    assert held >= 3 * 0.05, "each request was held for the delay (a floor that sleeping guarantees)"
