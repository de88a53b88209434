"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the moto S3 server (tests only).

moto answers every request correctly; this proxy sits between boto3 and moto and, following `Rule`s,
answers some requests itself with an S3 error (503 SlowDown, 500 InternalError, ...), drops the connection,
hangs longer than the client's read timeout, or adds latency. Every request is recorded (method, key,
headers, what was done), so tests can assert how many attempts the client made and what it sent.

    with FaultProxy(moto_url) as proxy:
        proxy.add(Rule("PUT", r"/latest\\.json$", status=503, times=None))   # every PUT of latest.json
        os.environ["AWS_ENDPOINT_URL"] = proxy.url
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import unquote, urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "expect"}
_S3_CODES = {500: "InternalError", 503: "SlowDown", 403: "AccessDenied", 400: "BadRequest"}
_MAX_CHUNKS = 1_000_000  # bound on chunks read from one chunked request body


@dataclass
class Rule:
    """Which requests to disturb and how.

    method: HTTP method or None for any; key: regex searched in the unquoted request path (/bucket/key);
    times: how many matching requests to disturb (None: all of them). Exactly one action:
    status (answer with this S3 error), reset (close the connection without an answer), hang (seconds to
    wait before closing without an answer), delay (seconds to wait, then forward normally) or corrupt
    (forward the request with the last byte of its body flipped: a corruption in transit). `headers`
    replaces headers of the forwarded answer (e.g. a checksum the service reports)."""

    method: str | None = None
    key: str = ""
    times: int | None = 1
    status: int | None = None
    reset: bool = False
    hang: float | None = None
    delay: float | None = None
    corrupt: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.search(self.key, path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    action: str  # forwarded | status NNN | reset | hang | delay+forwarded | corrupted+forwarded
    status: int | None = None


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        up = urlsplit(self.upstream)
        self._up_host, self._up_port = up.hostname, up.port
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue answered by the base class

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    for _ in range(_MAX_CHUNKS):
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    raise ValueError("chunked body too long")
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                path = unquote(urlsplit(self.path).path)
                headers = {k: v for k, v in self.headers.items()}
                rule = proxy._take(self.command, path)
                seen = Seen(self.command, path, headers, "forwarded")
                with proxy._lock:
                    proxy.seen.append(seen)
                if rule is not None and rule.status is not None:
                    seen.action, seen.status = f"status {rule.status}", rule.status
                    self._error(rule.status)
                    return
                if rule is not None and (rule.reset or rule.hang is not None):
                    seen.action = "reset" if rule.reset else "hang"
                    if rule.hang is not None:
                        time.sleep(rule.hang)
                    self.close_connection = True
                    self.connection.close()
                    return
                if rule is not None and rule.delay is not None:
                    seen.action = "delay+forwarded"
                    time.sleep(rule.delay)
                if rule is not None and rule.corrupt and body:
                    seen.action = "corrupted+forwarded"
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                seen.status = self._forward(body, rule.headers if rule is not None else {})

            def _error(self, status: int) -> None:
                code = _S3_CODES.get(status, "InternalError")
                payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                           f"<Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>"
                           ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _forward(self, body: bytes, replace: dict[str, str]) -> int:
                conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=60)
                try:
                    out = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    out["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=out)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    replaced = {k.lower(): (k, v) for k, v in replace.items()}
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length" and k.lower() not in replaced:
                            self.send_header(k, v)
                    for k, v in replaced.values():
                        self.send_header(k, v)
                    length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return resp.status
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.exhausted and rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def add(self, *rules: Rule) -> Self:
        with self._lock:
            self.rules.extend(rules)
        return self

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()

    def requests(self, method: str | None = None, key: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if (method is None or s.method == method) and re.search(key, s.path)]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
