"""The socket: CacheApp behind a TLS ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ant.cache.server.app import CacheApp
from ant.cache.server.wire import Request

log = logging.getLogger("ant.cache.server")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ant-cache"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this
    app: CacheApp  # set on the subclass made by serve()

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _other(self) -> None:
        self._answer(send_body=True)

    do_POST = do_PUT = do_PATCH = do_DELETE = _other

    def _answer(self, *, send_body: bool) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.app.handle(Request(self.command, self.path, headers))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
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


def serve(app: CacheApp, host: str, port: int, context: ssl.SSLContext | None) -> Listener:
    """Start answering on host:port (TLS unless ``context`` is None) on a daemon thread."""
    handler = type("Handler", (_Handler,), {"app": app})
    server = _TLSServer((host, port), handler, context)
    thread = threading.Thread(target=server.serve_forever, name="ant-cache-http", daemon=True)
    thread.start()
    return Listener(server, thread)
