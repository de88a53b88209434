"""A local HTTP server (127.0.0.1, random port, one thread per connection) that replays recorded
responses and injects faults, for the live-extraction tests.

Each route is a path with a *script*: a list of `Reply` consumed one per request, the last one repeating
forever (so a retry loop always ends by the client's own limits), or a function of the request. A reply
can hang (`delay`), cut its body short of its Content-Length (`send_bytes`), travel gzip-encoded
(`gzip`), be delimited by the connection's close rather than a Content-Length (`close_delimited`; over TLS,
closed with close_notify, or without it: `ragged_close`), or be answered 304 when the request's If-None-Match /
If-Modified-Since match its ETag / Last-Modified (conditional requests, as a real server does). Given an
SSLContext (`tls`), the server speaks HTTPS. Every request is logged.
"""

from __future__ import annotations

import gzip as gzip_lib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a hang, when longer than the client's timeout)
    send_bytes: int | None = None  # send only this many body bytes, then close (Content-Length stays full)
    gzip: bool = False  # Content-Encoding: gzip
    close_delimited: bool = False  # no Content-Length: the body (or its first send_bytes) ends as the connection closes
    ragged_close: bool = False  # over TLS, a close_delimited body ends without close_notify (else with it)


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


Responder = Callable[[Seen], Reply]


class _Route:
    def __init__(self, replies: list[Reply] | None = None, responder: Responder | None = None):
        self.replies = list(replies or [])
        self.responder = responder
        self.lock = threading.Lock()

    def next(self, seen: Seen) -> Reply:
        if self.responder is not None:
            return self.responder(seen)
        with self.lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class ReplayServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.routes: dict[str, _Route] = {}
        self.prefix_routes: dict[str, _Route] = {}
        self.requests: list[Seen] = []
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="replay-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ------------------------------------------------------------------------------------
    def route(self, path: str, *replies: Reply) -> None:
        """Replace the script of `path` (matched without the query string)."""
        self.routes[path] = _Route(list(replies))

    def respond(self, path: str, responder: Responder, *, prefix: bool = False) -> None:
        """Answer `path` (or every path starting with it, with `prefix`) with `responder(request)`."""
        (self.prefix_routes if prefix else self.routes)[path] = _Route(responder=responder)

    def _find(self, path: str) -> _Route | None:
        if path in self.routes:
            return self.routes[path]
        matches = [p for p in self.prefix_routes if path.startswith(p)]
        return self.prefix_routes[max(matches, key=len)] if matches else None

    def seen(self, path: str | None = None) -> list[Seen]:
        return [r for r in self.requests if path is None or r.path == path]

    def clear_log(self) -> None:
        self.requests.clear()

    # --- serving --------------------------------------------------------------------------------------
    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def setup(self) -> None:
                if server.tls is not None:  # the handshake, in the connection's own thread
                    self.request = server.tls.wrap_socket(self.request, server_side=True)
                super().setup()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(self.command, unquote(parts.path), parse_qsl(parts.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()}, body)
                server.requests.append(seen)
                route = server._find(seen.path)
                reply = route.next(seen) if route else Reply(404, b"no such recording: " + seen.path.encode(),
                                                             {"Content-Type": "text/plain"})
                if reply.delay and server._stop.wait(reply.delay):
                    return
                self._send(seen, reply)

            def _send(self, seen: Seen, reply: Reply) -> None:
                headers = dict(reply.headers)
                status, payload = reply.status, reply.body
                etag, modified = headers.get("ETag"), headers.get("Last-Modified")
                if status == 200 and (
                    (etag and seen.headers.get("if-none-match") == etag)
                    or (modified and not etag and seen.headers.get("if-modified-since") == modified)
                ):
                    status, payload = 304, b""
                    headers = {k: v for k, v in headers.items() if k in ("ETag", "Last-Modified", "Date")}
                elif reply.gzip:
                    payload = gzip_lib.compress(payload, mtime=0)
                    headers["Content-Encoding"] = "gzip"
                self.log_request(status)
                self.send_response_only(status)
                if "Date" not in headers:
                    headers["Date"] = self.date_time_string()
                for k, v in headers.items():
                    self.send_header(k, v)
                if reply.close_delimited and status != 304:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self._close_after(payload[: reply.send_bytes], notify=not reply.ragged_close)
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    if reply.send_bytes is not None and status != 304:
                        self.wfile.write(payload[: reply.send_bytes])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def finish(self) -> None:
                super().finish()
                if server.tls is not None:  # the TLS socket took the connection over from the server's
                    self.request.close()

            def _close_after(self, payload: bytes, notify: bool) -> None:
                """Send `payload` and close the connection: over TLS with close_notify when `notify` (closing the
                socket alone sends none: a ragged EOF)."""
                self.close_connection = True
                try:
                    self.wfile.write(payload)
                    self.wfile.flush()
                    if notify and isinstance(self.connection, ssl.SSLSocket):
                        self.connection.setblocking(False)  # send close_notify, do not wait for the client's
                        self.connection.unwrap()
                except (ssl.SSLWantReadError, BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass

        return Handler
