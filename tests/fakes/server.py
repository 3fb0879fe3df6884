"""A scripted HTTP server on 127.0.0.1, run in a background thread.

The fake providers (:mod:`tests.fakes.anthropic`, :mod:`tests.fakes.ollama`) build on this. It only
uses the standard library, so tests, fixtures, bench scripts and a Python shell can all use it:

    fake = FakeAnthropic().start()
    fake.reply("Hello")
    ... point the code under test at fake.url ...
    assert fake.requests[0].json["messages"][-1]["content"] == ...
    fake.stop()

Replies are queued with :meth:`FakeServer.enqueue` (or the providers' helpers) and consumed one per
scripted request, in order; when the queue is empty, the :meth:`FakeServer.always` reply or else the
provider's default reply ("OK") is used. Every request is recorded in :attr:`FakeServer.requests`.
Failure modes: ``with fake.offline():`` (connection refused, same port after), ``fake.delay = 3``
(every answer late), ``fake.override("/api/tags", HttpError(500, {...}))`` (one path broken),
``Hang()`` replies (no answer). :meth:`FakeServer.reset` clears all of it.
"""

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request the fake received."""

    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Hang:
    """Accept the request and never answer (until the fake is reset or stopped, or ``seconds`` pass)."""

    seconds: float = 300


DROP = object()  # a chunk that cuts the connection mid-body (no terminating chunk): a dropped stream


@dataclass
class HttpError:
    """Answer with an HTTP error status and a JSON body."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def setup(self):
        super().setup()
        # Like real servers (Go's net/http, uvicorn): no Nagle delay between small streamed writes.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self):
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        super().finish()

    def _handle(self):
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query={k: v[-1] for k, v in parse_qs(url.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length),
        )
        with fake._lock:
            fake.requests.append(request)
        try:
            if fake.delay:
                fake._release.wait(fake.delay)
            respond = _Responder(self, fake)
            override = fake._overrides.get(request.path)
            if isinstance(override, HttpError):
                respond.error(override)
            elif isinstance(override, Hang):
                respond.hang(override)
            else:
                fake.handle(request, respond)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (interrupts, timeouts): that is what some tests do

    do_GET = do_POST = do_HEAD = _handle


class _Responder:
    """What a fake's ``handle`` uses to answer: JSON, errors, streams, hangs."""

    def __init__(self, handler, fake):
        self.handler = handler
        self.fake = fake

    def json(self, data, status=200, headers=None):
        body = json.dumps(data).encode()
        self.handler.send_response(status)
        self.handler.send_header("Content-Type", "application/json")
        self.handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self.handler.wfile.write(body)

    def error(self, error: HttpError):
        self.json(error.body, error.status, error.headers)

    def hang(self, hang: Hang):
        self.fake._release.wait(hang.seconds)
        self.handler.close_connection = True

    def stream(self, content_type, chunks, chunk_delay=0.0):
        """Send ``chunks`` (bytes) as a chunked HTTP body, flushing each one; :data:`DROP` cuts it there."""
        self.handler.send_response(200)
        self.handler.send_header("Content-Type", content_type)
        self.handler.send_header("Cache-Control", "no-cache")
        self.handler.send_header("Transfer-Encoding", "chunked")
        self.handler.end_headers()
        wfile = self.handler.wfile
        for i, chunk in enumerate(chunks):
            if i and chunk_delay and self.fake._release.wait(chunk_delay):
                self.handler.close_connection = True
                return
            if chunk is DROP:
                self.handler.close_connection = True
                wfile.flush()
                return
            wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            wfile.flush()
        wfile.write(b"0\r\n\r\n")
        wfile.flush()


class FakeServer:
    """Base class: a threaded HTTP server with a reply queue and a request log."""

    def __init__(self, port: int = 0):
        self.port = port
        self.requests: list[Request] = []
        self._replies = deque()
        self._always = None  # answer every request with this once the queue is empty
        self.delay = 0.0  # seconds before answering any request (a slow server)
        self._overrides = {}  # path → HttpError/Hang answered instead of the protocol
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._connections = set()  # open client connections, cut on stop() so "down" means down
        self._httpd = None

    # lifecycle
    def start(self):
        self._release.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True).start()
        return self

    def stop(self):
        """Stop listening (connections are then refused) and release hanging requests."""
        self._release.set()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def offline(self):
        """Context manager: the server is down (connection refused) inside, back up on the same port after."""
        server = self

        class _Offline:
            def __enter__(self):
                server.stop()
                return server

            def __exit__(self, *exc):
                server.start()

        return _Offline()

    def reset(self):
        """Forget scripted replies and recorded requests; release hanging requests."""
        self._release.set()
        with self._lock:
            self._replies.clear()
            self._always = None
            self.delay = 0.0
            self._overrides.clear()
            self.requests.clear()
        self._release = threading.Event()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # scripting
    def enqueue(self, *replies):
        """Queue replies; each scripted request consumes the next one."""
        with self._lock:
            self._replies.extend(replies)
        return self

    def always(self, reply):
        """Answer every request with ``reply`` once the queue is empty (until reset), e.g. a lasting outage."""
        self._always = reply
        return self

    def override(self, path, reply):
        """Answer every request for ``path`` with ``reply`` (an HttpError or Hang) until reset."""
        self._overrides[path] = reply
        return self

    def next_reply(self, request):
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return self._always or self.default_reply(request)

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        return len(self._replies)

    def default_reply(self, request):
        raise NotImplementedError

    def handle(self, request: Request, respond: _Responder):
        raise NotImplementedError

    def wait_for(self, predicate, timeout=10.0):
        """Wait until ``predicate(self.requests)`` is true; return it (for tests that race a stream)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                result = predicate(list(self.requests))
            if result:
                return result
            time.sleep(0.01)
        raise TimeoutError(f"{type(self).__name__}: condition not met within {timeout}s")
