"""Tiny HTTP servers on 127.0.0.1 for operations tests: a webhook receiver and a gated file server."""

from __future__ import annotations

import http.server
import json
import threading
import time


class _Server:
    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Receiver(_Server):
    """A webhook receiver: records every POST (path, JSON body); answers `status`, after `delay` seconds, with a
    Location header of `redirect` + the request's path when given (a webhook's http:// answering with its https://)."""

    def __init__(self, path: str = "/services/T000/B000/T0KEN", status: int = 200, delay: float = 0.0,
                 redirect: str | None = None):
        self.posts: list[tuple[str, dict]] = []
        self.status, self.delay = status, delay
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.delay:
                    time.sleep(outer.delay)
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(outer.status)
                if redirect:
                    self.send_header("Location", redirect + self.path)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = self.base + path


class GatedFile(_Server):
    """Serves `data` at any path, but only once `release()` is called (at most `max_wait` seconds after the
    request): a slow source that keeps a run inside its extraction for as long as a test needs."""

    def __init__(self, data: bytes, content_type: str = "text/csv; charset=utf-8", max_wait: float = 120.0):
        self.requested = threading.Event()
        self._released = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requested.set()
                outer._released.wait(max_wait)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def release(self) -> None:
        self._released.set()

    def __exit__(self, *exc):
        self.release()
        super().__exit__(*exc)
