"""The socket: an app (the cache's, the controller's) behind a TLS ``ThreadingHTTPServer``
with HTTP/1.1 keep-alive."""

from __future__ import annotations

import http.client
import io
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from ant.cache.server.wire import Reply, Request

log = logging.getLogger("ant.cache.server")


MAX_HEADER_BYTES = 64 * 1024  # all header lines of one request (the request line: 64 KiB)
HEAD_TIMEOUT = 10.0  # from a request's first byte to the end of its headers
IDLE_TIMEOUT = 120.0  # a kept-alive connection with no request in it is closed after this


class Handles(Protocol):
    """What ``serve`` puts behind HTTP: a ``Request`` in, a ``Reply`` out."""

    def handle(self, request: Request) -> Reply: ...


class _Connection(socket.SocketIO):
    """The connection's reads: from a request's first byte on, every read gets only
    what is left of the head deadline, so a slow sender (slowloris) is cut off."""

    deadline: float | None = None  # time.monotonic(); None: waiting for a request

    def __init__(self, sock: socket.socket, idle: float) -> None:
        super().__init__(sock, "rb")
        self.sock = sock
        self.idle = idle

    def readinto(self, b: Any) -> int | None:
        if self.deadline is None:
            self.sock.settimeout(self.idle)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request's headers took too long")
            self.sock.settimeout(left)
        return super().readinto(b)


class _HeadReader(io.BufferedReader):
    """Buffered reads whose header lines share one byte budget (431 when spent)."""

    budget: int | None = None  # None: no headers being read

    def readline(self, size: int | None = -1) -> bytes:
        if self.budget is None:
            return super().readline(size)
        line = super().readline(self.budget + 1)
        self.budget -= len(line)
        if self.budget < 0:
            raise http.client.LineTooLong(f"request headers over {MAX_HEADER_BYTES} bytes")
        return line


class _Handler(BaseHTTPRequestHandler):
    """Reads a request's line and headers, never its body: the cache serves reads, and
    the app refuses (before anything else, after authentication) a request with one."""

    protocol_version = "HTTP/1.1"
    server_version = "ant-cache"
    sys_version = ""
    app: Handles  # set on the subclass made by serve()
    head_timeout = HEAD_TIMEOUT
    idle_timeout = IDLE_TIMEOUT

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the base class's reader: replaced by one that keeps deadlines
        self._conn = _Connection(self.connection, self.idle_timeout)
        self.rfile = self._reader = _HeadReader(self._conn)

    def handle_one_request(self) -> None:
        self._conn.deadline = None
        try:
            arrived = self._reader.peek(1)  # a new request (or the end), in the idle time
        except (TimeoutError, OSError):
            arrived = b""
        if not arrived:
            self.close_connection = True
            return
        self._conn.deadline = time.monotonic() + self.head_timeout
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._reader.budget = MAX_HEADER_BYTES
        try:
            return super().parse_request()
        finally:
            self._reader.budget = None

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _other(self) -> None:
        self._answer(send_body=True)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _other

    def _answer(self, *, send_body: bool) -> None:
        self._conn.deadline = None
        self.connection.settimeout(self.idle_timeout)  # for writing the answer
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, self.path, headers)
        reply = self.app.handle(request)
        if request.has_body:
            self.close_connection = True  # its unread body must not be taken for a request
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], context: ssl.SSLContext | None
    ):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, on the connection's own thread, so that a slow
        # client never holds up accept().
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log.debug("TLS handshake with %s failed: %s", client_address, e)
            return
        try:
            tls.settimeout(None)
            super().finish_request(tls, client_address)
        finally:
            self.shutdown_request(tls)  # the base class closes the plain socket, not this one

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


@dataclass
class Listener:
    server: _TLSServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(
    app: Handles,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    *,
    head_timeout: float = HEAD_TIMEOUT,
    idle_timeout: float = IDLE_TIMEOUT,
) -> Listener:
    """Start answering on host:port (TLS unless ``context`` is None) on a daemon thread."""
    attrs = {"app": app, "head_timeout": head_timeout, "idle_timeout": idle_timeout}
    handler = type("Handler", (_Handler,), attrs)
    server = _TLSServer((host, port), handler, context)
    thread = threading.Thread(target=server.serve_forever, name="ant-cache-http", daemon=True)
    thread.start()
    return Listener(server, thread)
