"""HTTP plumbing: a threaded HTTP/1.1 server that can also drop a connection abruptly.

Stdlib ThreadingHTTPServer rather than werkzeug/flask: the connection-reset fault needs
the raw socket (SO_LINGER 0 then close, so the client sees a TCP RST and no response),
every response header is ours to set, and eight routes need no framework. One thread
per connection serves keep-alive requests in a loop; sleeps for simulated latency block
only that connection.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

Dispatch = Callable[["Exchange"], None]


class Exchange(BaseHTTPRequestHandler):
    """One connection; each request on it is handed to the server's dispatch function."""

    protocol_version = "HTTP/1.1"  # keep-alive by default
    server_version = "PipedriveSandbox/1.0"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server: "SandboxHTTPServer"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without NODELAY, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        self.server.dispatch(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args) -> None:
        # Silent: request lines may carry ?api_token=..., which must not reach logs.
        pass

    def read_body(self) -> bytes | None:
        """The request body, or None when it is not framed by Content-Length."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            return None
        return self.rfile.read(int(length))

    def reply(self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def abort(self) -> None:
        """Drop the connection without a response: the close sends RST, not FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.mark_aborted(self.connection)
        self.close_connection = True


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: bursts of 100+ new connections
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatch: Dispatch):
        self.dispatch = dispatch
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._aborted: set[socket.socket] = set()
        self.connections_accepted = 0
        super().__init__(address, Exchange)

    def process_request(self, request, client_address) -> None:
        with self._lock:
            self._open.add(request)
            self.connections_accepted += 1
        super().process_request(request, client_address)

    def mark_aborted(self, request: socket.socket) -> None:
        with self._lock:
            self._aborted.add(request)

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._open.discard(request)
            aborted = request in self._aborted
            self._aborted.discard(request)
        if aborted:
            self.close_request(request)  # no shutdown(SHUT_WR): that would send a FIN first
        else:
            super().shutdown_request(request)

    def close_connections(self, wait_s: float = 5.0) -> None:
        """Wake every connection thread (idle keep-alives included) and wait for them to end."""
        with self._lock:
            open_now = list(self._open)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._open:
                    return
            time.sleep(0.01)
