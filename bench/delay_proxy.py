"""An HTTP proxy on loopback that holds every request for a fixed delay before passing it on.

It stands for the distance to a real object store: a request that waits here waits on its own
thread, so requests sent side by side wait side by side, as they would on a network. It counts
the requests it forwarded and the most it held at once. One connection to the upstream server
per client connection; bodies by Content-Length only (what botocore sends for listings and
deletes).
"""

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers of one hop, which the proxy answers itself rather than passes on.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
# Headers that the proxy's own response sets.
ANSWERED_HERE = {"content-length", "date", "server"}


class DelayProxy:
    """Forward HTTP requests to ``upstream``, each after ``delay`` seconds; serve while used as a context."""

    def __init__(self, upstream, delay):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.delay = delay
        self.lock = threading.Lock()
        self.requests = self.at_once = self.most_at_once = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="delay-proxy", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def reset(self):
        """Start counting afresh."""
        with self.lock:
            self.requests = self.most_at_once = 0

    def _arrived(self):
        with self.lock:
            self.requests += 1
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)

    def _left(self):
        with self.lock:
            self.at_once -= 1

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

            def setup(self):
                super().setup()
                self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=600)

            def finish(self):
                self.upstream.close()
                super().finish()

            def forward(self):
                proxy._arrived()
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    time.sleep(proxy.delay)
                    headers = {
                        name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP
                    }
                    self.upstream.request(self.command, self.path, body=body, headers=headers)
                    response = self.upstream.getresponse()
                    content = response.read()
                    self.send_response(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in HOP_BY_HOP | ANSWERED_HERE:
                            self.send_header(name, value)
                    # A HEAD answer has no body, yet its length is the object's.
                    length = response.getheader("Content-Length") if self.command == "HEAD" else len(content)
                    self.send_header("Content-Length", str(length or 0))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(content)
                finally:
                    proxy._left()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

            def log_message(self, format, *args):
                """Say nothing per request: the counts are the report."""

        return Handler
