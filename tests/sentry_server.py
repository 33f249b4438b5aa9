"""A stand-in for Sentry's ingest server on loopback: it keeps the envelopes sentry-sdk sends it."""

import gzip
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Envelopes:
    """The items of every envelope received, as ``(item header, payload)``, and their raw bodies."""

    def __init__(self):
        self.items = []
        self.bodies = []
        self.lock = threading.Lock()

    def add(self, body):
        lines = body.split(b"\n")
        with self.lock:
            self.bodies.append(body)
            # An envelope is a header line, then each item's header line and its payload line.
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header.strip():
                    self.items.append((json.loads(header), json.loads(payload)))

    def of_type(self, kind):
        """Return the payloads of the items of ``kind`` ("event", "check_in"...), in the order received."""
        with self.lock:
            return [payload for header, payload in self.items if header.get("type") == kind]


@contextmanager
def sentry_server():
    """Serve on a loopback port; yield ``(dsn, envelopes)``, the DSN naming the server as project 1."""
    envelopes = Envelopes()

    class Ingest(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            envelopes.add(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format, *args):
            pass  # the test reads what arrived, not the access log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://public-key@127.0.0.1:{server.server_port}/1", envelopes
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
