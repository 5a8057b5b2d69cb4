"""A scriptable Sentry stand-in on 127.0.0.1 for unit tests: records envelopes, answers as told."""

import gzip
import http.server
import threading
import time

KEY = "0123456789abcdef0123456789abcdef"


class FakeSentry(http.server.ThreadingHTTPServer):
    """Answers envelope POSTs from a script: (status, headers) tuples or "hang"."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = []
        self.requests = []
        self.stop_hanging = threading.Event()

    def start(self):
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self):
        self.stop_hanging.set()
        self.shutdown()
        self.server_close()

    def envelopes(self):
        """The envelopes received so far, parsed."""
        from sentry_sdk.envelope import Envelope

        return [Envelope.deserialize(request["body"]) for request in self.requests]

    @property
    def dsn(self):
        return f"http://{KEY}@127.0.0.1:{self.server_address[1]}/42"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":  # sentry-sdk compresses
            body = gzip.decompress(body)
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body,
             "time": time.monotonic()})
        action = self.server.script.pop(0) if self.server.script else (200, {})
        if action == "hang":
            self.server.stop_hanging.wait(5)
            return
        status, headers = action
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        payload = b'{"id": "x"}' if status == 200 else b'{"detail": "nope"}'
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass
