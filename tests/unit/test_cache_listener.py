"""ant.cache.server.listener on a real socket: bodies are never read, headers are capped,
and slow senders are cut off, while kept-alive connections may idle."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ant.cache.auth import Authenticator, Authorizer
from ant.cache.metrics import Registry
from ant.cache.server.app import CacheApp
from ant.cache.server.listener import MAX_HEADER_BYTES, Listener, serve
from ant.cache.store import Store
from ant.kube.auth import NoAuth
from ant.kube.client import Client
from ant.kube.transport import RetryPolicy, Transport
from tests.unit.scripted_server import scripted_server
from tests.unit.test_cache_server import oracle

HEAD_TIMEOUT = 0.5


@pytest.fixture
def listener() -> Iterator[Listener]:
    with scripted_server() as server:
        server.replies += [oracle(server)] * 50
        client = Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))
        app = CacheApp(Store(), Authenticator(client), Authorizer(client), Registry())
        listening = serve(app, "127.0.0.1", 0, None, head_timeout=HEAD_TIMEOUT, idle_timeout=5)
        try:
            yield listening
        finally:
            listening.close()


def connect(listener: Listener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.port), timeout=10)


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_post_with_a_huge_body_is_answered_without_reading_it(listener: Listener) -> None:
    """300 MB announced, 1 KB sent: the answer comes at once and the connection closes
    (the body once was read into memory before anything was checked)."""
    for token, status in ((None, b"401"), ("alice-token", b"405")):
        with connect(listener) as sock:
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            head = (
                f"POST /api/v1/pods HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 314572800\r\n\r\n"
            )
            sock.sendall(head.encode() + b"x" * 65536)
            answer = until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
        assert b"Connection: close" in answer


def test_a_read_with_a_body_is_413(listener: Listener) -> None:
    with connect(listener) as sock:
        sock.sendall(
            b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n10000\r\n"
        )
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_headers_over_the_cap_are_431(listener: Listener) -> None:
    line = b"X-Filler: " + b"f" * 1000 + b"\r\n"
    count = MAX_HEADER_BYTES // len(line) + 2  # fewer than http.client's 100 headers
    assert count < 100
    with connect(listener) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n" + line * count + b"\r\n")
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


def test_a_slow_sender_is_cut_off_at_the_head_deadline(listener: Listener) -> None:
    """One byte every 50 ms keeps every read short, but the headers never end."""
    sock = connect(listener)
    stop = threading.Event()

    def drip() -> None:
        for byte in b"GET /livez HTTP/1.1\r\nX-Slow: " + b"s" * 10_000:
            if stop.wait(0.05):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    dripping = threading.Thread(target=drip, daemon=True)
    started = time.monotonic()
    dripping.start()
    try:
        assert until_closed(sock) == b""  # closed by the server, no answer
        assert time.monotonic() - started < HEAD_TIMEOUT + 3
    finally:
        stop.set()
        dripping.join(5)
        sock.close()


def test_a_kept_alive_connection_may_idle_longer_than_the_head_deadline(
    listener: Listener,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=10)
    try:
        conn.request("GET", "/livez")
        assert conn.getresponse().read() == b"ok\n"
        first = conn.sock
        time.sleep(2 * HEAD_TIMEOUT)  # idle between requests: the behaviour under test
        conn.request("GET", "/livez")
        assert conn.getresponse().read() == b"ok\n"
        assert conn.sock is first
    finally:
        conn.close()
