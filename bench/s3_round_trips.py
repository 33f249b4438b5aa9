"""Count the round trips of listing a bucket's ``uploads/``, page after page and side by side.

    python -m bench.s3_round_trips --keys 25000,50000,100000

moto, the S3-protocol server that runs here, answers one request at a time and takes most of a
second per page at 100,000 keys, so its wall times say little about a real object store. This
counts instead. It starts moto on loopback (or uses ``--endpoint``), fills a bucket with keys
shaped as uploads are, and at each size lists ``uploads/`` with the sweep's own walker through
``delay_proxy``, which holds each request ``--delay`` seconds so that requests sent side by
side are under way side by side: once on one connection (the plain chain of pages), once on
``--connections``.

Each request gets a depth: one more than the deepest request already answered when it was
sent. The deepest depth is the number of round trips on the listing's critical path: no
server, however fast, lists it in fewer round trip times. It over-counts when a request was
only sent after an unrelated one came back, never under-counts. The model
(``critical_path``) scales that count to more keys; the report says how.
"""

import argparse
import dataclasses
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

BUCKET = "round-trips"
FILLING_CONNECTIONS = 8
MODEL_OBJECTS = (1_000_000, 10_000_000, 100_000_000)
MODEL_ROUND_TRIPS = (0.020, 0.060)  # seconds
# What moto's server (werkzeug) logs once it listens, with the port the system gave it.
LISTENING = re.compile(rb"Running on (http://127\.0\.0\.1:\d+)")


@dataclasses.dataclass(frozen=True)
class Listing:
    """One listing of the bucket: what it yielded, the requests it sent, and how they followed each other."""

    keys: int
    connections: int
    page_size: int
    requests: int
    critical_path: int
    most_at_once: int  # as the proxy saw them
    seconds: float


class RoundTrips:
    """Give each ListObjectsV2 call of a client its depth, and keep the count and the deepest."""

    def __init__(self, client):
        self.lock = threading.Lock()
        self.requests = self.deepest_answered = 0
        client.meta.events.register("before-call.s3.ListObjectsV2", self.sent)
        client.meta.events.register("after-call.s3.ListObjectsV2", self.answered)

    def sent(self, context, **kwargs):
        with self.lock:
            self.requests += 1
            context["depth"] = self.deepest_answered + 1

    def answered(self, context, **kwargs):
        with self.lock:
            self.deepest_answered = max(self.deepest_answered, context["depth"])


def critical_path(listing, objects):
    """Return the model's round trips on the critical path of listing ``objects`` keys like ``listing``.

    One connection: one round trip per page, exactly. Side by side: while the listing is under
    way, ``connections`` requests are out at once, each bringing the keys a request brought on
    average; what the measurement took beyond that (the first page, the start of each folder,
    pieces that spilled into a second request) is carried over unchanged.
    """
    if listing.connections == 1:
        return math.ceil(objects / listing.page_size)
    keys_per_round = listing.keys * listing.connections / listing.requests
    beyond = listing.critical_path - listing.keys / keys_per_round
    return math.ceil(round(beyond + objects / keys_per_round, 6))  # no float error over a whole number


def upload_keys(count, start=0, seed=0):
    """Return keys ``start`` to ``start + count`` shaped as uploads are, over the five owner folders."""
    from media_app.models import owner_folder

    from .dataset import owner_models

    folders = [owner_folder(model) for model in owner_models()]
    rng = random.Random(f"{seed}-{start}")
    return [
        f"uploads/{folders[number % len(folders)]}/{rng.getrandbits(64):016x}-photo-{number}.jpg"
        for number in range(start, start + count)
    ]


def fill(client, bucket, keys):
    """Store each key with a one-byte body, several requests at a time."""
    with ThreadPoolExecutor(FILLING_CONNECTIONS) as pool:
        for _ in pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys):
            pass


def client_config(connections):
    """Return botocore's configuration as the project's settings build it, with a pool of ``connections``."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": 10},
        max_pool_connections=connections,
        s3={"addressing_style": "path"},
    )


def storage_for(endpoint, bucket, connections):
    """Return an ``S3Storage`` of ``bucket`` at ``endpoint``, as the project's settings configure it."""
    from storages.backends.s3 import S3Storage

    return S3Storage(
        bucket_name=bucket,
        endpoint_url=endpoint,
        access_key="testing",
        secret_key="testing",
        region_name="us-east-1",
        client_config=client_config(connections),
    )


def list_once(proxy, bucket, connections):
    """List the bucket's ``uploads/`` through ``proxy`` with the sweep's walker; return the ``Listing``."""
    from django.test.utils import override_settings

    from media_app.cleanup.backends import s3

    with override_settings(MEDIA_CLEANUP_S3_LIST_CONCURRENCY=connections):
        walker = s3.S3Walker(storage_for(proxy.url, bucket, connections))
    round_trips = RoundTrips(walker.client)
    proxy.reset()
    started = time.monotonic()
    keys = sum(1 for _ in walker.iter_files())
    return Listing(
        keys=keys,
        connections=connections,
        page_size=s3.PAGE_SIZE,
        requests=round_trips.requests,
        critical_path=round_trips.deepest_answered,
        most_at_once=proxy.most_at_once,
        seconds=time.monotonic() - started,
    )


def measure(endpoint, sizes, connections, delay, log=print):
    """Fill a bucket at ``endpoint`` to each size in turn and list it both ways; return the ``Listing``s."""
    from .delay_proxy import DelayProxy

    bucket = f"{BUCKET}-{time.time_ns()}"
    client = storage_for(endpoint, bucket, FILLING_CONNECTIONS).connection.meta.client
    client.create_bucket(Bucket=bucket)
    listings, stored = [], 0
    with DelayProxy(endpoint, delay) as proxy:
        for size in sorted(sizes):
            log(f"Storing {size - stored:,} more keys ({size:,} in all)...")
            fill(client, bucket, upload_keys(size - stored, start=stored))
            stored = size
            for width in (1, connections):
                listing = list_once(proxy, bucket, width)
                log(
                    f"  {listing.keys:,} keys on {width} connection(s): {listing.requests} requests, "
                    f"{listing.critical_path} on the critical path ({listing.seconds:.1f} s)"
                )
                listings.append(listing)
    return listings


def duration(seconds):
    """Return seconds as a short human duration: 45 s, 12 min, 1.7 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render(listings, delay):
    """Return the Markdown report: the measurements, and the model at 1M, 10M and 100M objects."""
    largest = max(listing.keys for listing in listings)
    sequential = next(item for item in listings if item.keys == largest and item.connections == 1)
    side_by_side = next(item for item in listings if item.keys == largest and item.connections > 1)
    lines = [
        f"Measured on moto through a proxy holding each request {delay * 1000:.0f} ms, pages of "
        f"{sequential.page_size:,} keys, {side_by_side.connections} connections side by side.",
        "",
        "| keys | connections | requests | round trips on the critical path | the model's | "
        "most requests at once (proxy) | wall s (moto) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for listing in listings:
        model = critical_path(sequential if listing.connections == 1 else side_by_side, listing.keys)
        lines.append(
            f"| {listing.keys:,} | {listing.connections} | {listing.requests:,} | "
            f"{listing.critical_path:,} | {model:,} | {listing.most_at_once} | {listing.seconds:.1f} |"
        )
    header = "| objects | round trips, one connection | side by side |"
    rule = "| --- | --- | --- |"
    for round_trip in MODEL_ROUND_TRIPS:
        header += (
            f" one connection at {round_trip * 1000:.0f} ms | side by side at {round_trip * 1000:.0f} ms |"
        )
        rule += " --- | --- |"
    lines += ["", header, rule]
    for objects in MODEL_OBJECTS:
        chain, parallel = critical_path(sequential, objects), critical_path(side_by_side, objects)
        row = f"| {objects:,} | {chain:,} | {parallel:,} |"
        for round_trip in MODEL_ROUND_TRIPS:
            row += f" {duration(chain * round_trip)} | {duration(parallel * round_trip)} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


@contextmanager
def moto_server():
    """Run moto's S3-protocol server on a loopback port the system picks; yield its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-moto-") as folder:
        log_path = Path(folder) / "server.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], stdout=log, stderr=log
            )
        try:
            deadline = time.monotonic() + 30
            while not (listening := LISTENING.search(log_path.read_bytes())):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start: {log_path.read_text()[-500:]}")
                time.sleep(0.1)
            yield listening.group(1).decode()
        finally:
            server.terminate()
            server.wait(timeout=30)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.s3_round_trips", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--keys", default="100000", help="comma-separated sizes of the bucket, listed in turn"
    )
    parser.add_argument("--connections", type=int, default=16, help="connections side by side (default 16)")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the proxy holds each request")
    parser.add_argument("--endpoint", help="an S3-protocol server to use instead of starting moto's")
    args = parser.parse_args(argv)
    args.keys = [int(size.replace("_", "")) for size in args.keys.split(",")]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.update({"ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "mediaproject.settings"})
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    import django

    django.setup()
    if args.endpoint:
        listings = measure(args.endpoint, args.keys, args.connections, args.delay)
    else:
        with moto_server() as endpoint:
            listings = measure(endpoint, args.keys, args.connections, args.delay)
    print(render(listings, args.delay))


if __name__ == "__main__":
    main()
