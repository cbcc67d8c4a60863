"""Transport's light engine (ant.kube.stdhttp, what the ``ant`` command uses).

Every test of test_transport.py runs here again with ``stdlib_http=True``: both engines
must behave the same (retries, errors, credentials, headers). Then what only this engine
does itself: TLS (CA, tls-server-name, a wrong CA), keep-alive, gzip, an idle connection
the server closed.
"""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ant.errors import ExitCode, TransportError
from ant.kube.auth import NoAuth
from ant.kube.transport import RetryPolicy, Transport
from tests.unit import test_transport
from tests.unit.scripted_server import ScriptedServer, respond, scripted_server, stream
from tests.unit.test_transport import *  # noqa: F403  (run again, with the light engine)


@pytest.fixture(autouse=True)
def stdlib_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Transport made in these tests sends whole requests with ant.kube.stdhttp."""
    init = Transport.__init__

    def with_stdlib_http(self: Transport, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stdlib_http", True)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Transport, "__init__", with_stdlib_http)


def test_the_engine_is_the_light_one(server: ScriptedServer) -> None:
    t = test_transport.transport(server, [])
    server.replies.append(respond(200, b"{}"))
    t.request("GET", "/version")
    assert t.connections is not None
    assert t._session is None, "a whole request never made a requests session"


def test_a_proxy_still_goes_through_requests(server: ScriptedServer) -> None:
    t = Transport("http://cluster.invalid:6443", auth=NoAuth(), proxy_url=server.url)
    assert t.connections is None


def test_keep_alive_and_gzip(server: ScriptedServer) -> None:
    body = b'{"kind": "Status"}' * 100
    server.replies += [
        respond(200, gzip.compress(body), Content_Encoding="gzip"),
        respond(200, b"{}"),
    ]
    t = test_transport.transport(server, [])
    assert t.request("GET", "/a").content == body
    assert server.seen[0].headers["Accept-Encoding"] == "gzip"
    t.request("GET", "/b")
    assert t.connections is not None
    assert len(t.connections._idle) == 1, "both requests went over one connection"


def test_a_streamed_gzip_list_is_decoded_while_it_arrives(server: ScriptedServer) -> None:
    """Client.list_each over the light engine: a gzipped, chunked protobuf list, its items
    the same as decoding the whole body; then the connection is reused, and requests was
    never needed."""
    from ant.kube import codec
    from ant.kube.client import Client
    from ant.kube.resources import STATEFULSETS
    from tests.unit.test_liststream import BODY

    packed = gzip.compress(BODY)
    chunks = [packed[i : i + 97] for i in range(0, len(packed), 97)]
    server.replies += [
        stream(chunks, codec.PROTOBUF, Content_Encoding="gzip"),
        respond(200, b"{}"),
    ]
    t = test_transport.transport(server, [])
    items = list(Client(t).list_each(STATEFULSETS, "research"))
    assert items == list(codec.decode(BODY).items)  # type: ignore[attr-defined]
    t.request("GET", "/b")
    assert t.connections is not None
    assert len(t.connections._idle) == 1
    assert t._session is None


def test_a_streamed_list_with_a_content_length_leaves_its_connection_reusable(
    server: ScriptedServer,
) -> None:
    """A body read to its end by length (not chunked) is closed before its connection goes
    back to the pool: the next request on it is answered (it was refused, 'Request-sent')."""
    from ant.kube import codec
    from ant.kube.client import Client
    from ant.kube.resources import STATEFULSETS
    from tests.unit.test_liststream import BODY

    server.replies += [respond(200, BODY, codec.PROTOBUF), respond(200, b"{}")]
    t = test_transport.transport(server, [])
    assert len(list(Client(t).list_each(STATEFULSETS, "research"))) > 0
    assert t.connections is not None
    assert len(t.connections._idle) == 1
    assert t.request("GET", "/b").status == 200
    assert [s.path for s in server.seen][-1] == "/b"


def test_an_idle_connection_the_server_closed_is_replaced(server: ScriptedServer) -> None:
    server.replies += [respond(200, b"{}", Connection="keep-alive"), respond(201, b"{}")]
    t = test_transport.transport(server, [])
    t.request("GET", "/a")
    assert t.connections is not None
    idle = t.connections._idle[0]
    assert idle.sock is not None
    idle.sock.shutdown(2)  # as a server does to a connection idle for too long
    assert t.request("POST", "/b", body=b"{}").status == 201
    assert [s.path for s in server.seen] == ["/a", "/b"]


# ---- TLS ---------------------------------------------------------------------------------
@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only 'api.test': (url, CA)."""
    from ant.cache.tls import self_signed

    cert, key = self_signed(tmp_path, ["api.test"])

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tls_with_the_kubeconfig_ca_and_tls_server_name(tls_server: tuple[str, str]) -> None:
    url, ca = tls_server
    t = Transport(url, auth=NoAuth(), verify=ca, tls_server_name="api.test")
    assert t.request("GET", "/version").content == b"{}"


def test_a_certificate_for_another_name_is_refused(tls_server: tuple[str, str]) -> None:
    url, ca = tls_server
    t = Transport(url, auth=NoAuth(), verify=ca, retry=RetryPolicy(attempts=3))
    with pytest.raises(TransportError, match=r"TLS handshake with 127\.0\.0\.1:\d+ failed: ") as e:
        t.request("GET", "/version")
    assert e.value.exit_code is ExitCode.UNAVAILABLE
    assert "certificate" in str(e.value)


def test_insecure_skip_tls_verify(tls_server: tuple[str, str]) -> None:
    url, _ = tls_server
    assert Transport(url, auth=NoAuth(), verify=False).request("GET", "/v").content == b"{}"


def test_the_scripted_server_is_plain_http() -> None:
    """The tests above that use ``server`` run over plain HTTP, those here over TLS."""
    with scripted_server() as s:
        assert s.url.startswith("http://")
