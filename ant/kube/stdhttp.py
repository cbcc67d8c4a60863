"""Whole requests over the standard library's ``http.client``: Transport's light engine.

Importing ``requests`` costs about 40 ms, a third of a command's start-up before its first
request. ``Transport(stdlib_http=True)`` (what the ``ant`` command uses) sends its
requests through this pool of keep-alive connections instead, whole or streamed (lists
decoded while they arrive, watches, followed logs); only proxies still go through
``requests``, which is then imported. Everything above
the wire (credentials, retries, errors, logging) is Transport's, the same for both: this
module only moves bytes and says what went wrong in ``WireError``.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import threading
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ant.kube.auth import ClientCert


class WireError(Exception):
    """No HTTP answer. ``kind``: ``connect``, ``tls``, ``timeout``, ``broken`` (the
    connection failed after the request went out) or ``failed`` (anything else);
    ``sent``: the server may have the request."""

    def __init__(self, kind: str, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.sent = sent


@dataclass
class Reply:
    """What Transport reads of a response (the names ``requests.Response`` has)."""

    status_code: int
    reason: str
    headers: http.client.HTTPMessage = field(repr=False)
    content: bytes = field(repr=False)
    url: str
    body: Body | None = field(default=None, repr=False)  # a stream's body, still unread

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def close(self) -> None:
        """A whole body is already read and its connection back in the pool."""
        if self.body is not None:
            self.body.close()


class Body:
    """A streamed response's body, read as it arrives; its connection goes back to the
    pool once the body has been read to its end, and is closed otherwise."""

    def __init__(
        self, pool: Connections, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse
    ) -> None:
        self._pool, self._conn, self._resp = pool, conn, resp
        gzip = resp.getheader("Content-Encoding", "").lower() == "gzip"
        self._gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._ended = False

    def set_read_timeout(self, seconds: float) -> None:
        if self._conn.sock is not None:
            self._conn.sock.settimeout(seconds)

    def chunks(self, size: int | None) -> Iterator[bytes]:
        """What has arrived, at most ``size`` bytes at a time (before decompression)."""
        try:
            while data := self._resp.read1(size or 65536):
                yield self._gunzip.decompress(data) if self._gunzip else data
        except TimeoutError as e:
            raise WireError("timeout", "read timed out", sent=True) from e
        except (OSError, http.client.HTTPException, zlib.error) as e:
            raise WireError("broken", reason(e), sent=True) from e
        # read1 leaves a Content-Length body it has read to the end open (it closes only a
        # chunked one): closed here, or the connection refuses its next request
        # (ResponseNotReady 'Request-sent') once back in the pool.
        self._resp.close()
        self._ended = True

    def close(self) -> None:
        if self._ended and not self._resp.will_close:
            self._pool.give(self._conn)
        else:
            self._conn.close()


def _ascii(host: str) -> str | bytes:
    """An ASCII host name as bytes: given a ``str``, ``getaddrinfo`` and ``ssl`` encode it
    with the IDNA codec, whose first import (with ``stringprep``) costs ~20 ms of start-up.
    Any other name is left to them."""
    return host.encode("ascii") if host.isascii() else host


class HTTPConnection(http.client.HTTPConnection):
    """``http.client``'s, connecting without the IDNA codec for an ASCII host."""

    def connect(self) -> None:
        self.sock = socket.create_connection(
            (_ascii(self.host), self.port),  # type: ignore[arg-type]
            self.timeout,
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HTTPSConnection(http.client.HTTPSConnection, HTTPConnection):
    """Checks the certificate against ``server_name`` (kubeconfig's tls-server-name)."""

    def __init__(self, host: str, port: int | None, server_name: str | None, **kw: Any) -> None:
        super().__init__(host, port, **kw)
        self.server_name = server_name

    def connect(self) -> None:
        HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=_ascii(self.server_name or self.host)
        )


# A keep-alive connection the server closed while it sat idle fails like this on reuse.
_DROPPED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Connections:
    """Keep-alive connections to one server, shared by threads."""

    def __init__(
        self,
        server: str,
        *,
        verify: bool | str,
        client_cert: Callable[[], ClientCert | None],
        server_name: str | None,
        user_agent: str,
        size: int,
    ) -> None:
        parts = urlsplit(server)
        self.server = server
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.verify = verify
        self.client_cert = client_cert
        self.server_name = server_name
        self.user_agent = user_agent
        self.size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._contexts: dict[ClientCert | None, ssl.SSLContext] = {}
        # Idle sockets are closed when the pool goes, even if nobody called close().
        weakref.finalize(self, _close_all, self._idle)

    def send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        headers: Mapping[str, str],
        timeouts: tuple[float, float],
        *,
        stream: bool = False,
    ) -> Reply:
        """One request; ``timeouts``: (connect, read) in seconds. ``stream``: a successful
        answer's body is left to be read from ``Reply.body``."""
        connect_timeout, read_timeout = timeouts
        target = self.prefix + path + ("?" + urlencode(query) if query else "")
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip", **headers}
        conn, reused = self._take()
        try:
            if not reused:
                self._connect(conn, connect_timeout)
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout)
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
            except _DROPPED:
                if not reused:
                    raise
                # Closed by the server while idle: the request never reached it.
                conn.close()
                self._connect(conn, connect_timeout)
                assert conn.sock is not None
                conn.sock.settimeout(read_timeout)
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
            if stream and resp.status < 400:
                url = self.server + target
                return Reply(resp.status, resp.reason, resp.msg, b"", url, Body(self, conn, resp))
            content = resp.read()
        except WireError:
            conn.close()
            raise
        except http.client.InvalidURL as e:  # before anything was sent
            conn.close()
            raise WireError("failed", reason(e), sent=False) from e
        except TimeoutError as e:
            conn.close()
            raise WireError("timeout", "read timed out", sent=True) from e
        except (OSError, http.client.HTTPException) as e:  # ssl.SSLError too, once connected
            conn.close()
            raise WireError("broken", reason(e), sent=True) from e
        if resp.getheader("Content-Encoding", "").lower() == "gzip":
            content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if resp.will_close:
            conn.close()
        else:
            self.give(conn)
        return Reply(resp.status, resp.reason, resp.msg, content, self.server + target)

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        if self.https:
            return (
                HTTPSConnection(
                    self.host,
                    self.port,
                    self.server_name,
                    context=self._context(),
                ),
                False,
            )
        return HTTPConnection(self.host, self.port), False

    def give(self, conn: http.client.HTTPConnection) -> None:
        """Back into the pool, for the next request."""
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self, conn: http.client.HTTPConnection, timeout: float) -> None:
        """Open the connection (TCP, then TLS): nothing has been sent when this fails."""
        conn.timeout = timeout
        try:
            conn.connect()
        except TimeoutError as e:
            raise WireError("timeout", "connect timed out", sent=False) from e
        except ssl.SSLError as e:
            raise WireError("tls", reason(e), sent=False) from e
        except OSError as e:
            raise WireError("connect", reason(e), sent=False) from e

    def _context(self) -> ssl.SSLContext:
        """One context per client certificate (an exec plugin may hand out a new one)."""
        cert = self.client_cert()
        context = self._contexts.get(cert)
        if context is None:
            context = self._contexts[cert] = tls_context(self.verify, cert)
        return context


def tls_context(verify: bool | str, cert: ClientCert | None) -> ssl.SSLContext:
    """TLS as kubeconfig says: the CA (or no verification), the client certificate."""
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def _close_all(connections: list[http.client.HTTPConnection]) -> None:
    for conn in connections:
        conn.close()
    connections.clear()


_SSL_REASON = re.compile(r"\[SSL: [A-Z_]+\] ([^(]+?)\s*\(_ssl")
_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def reason(e: BaseException) -> str:
    """The human part of a network error (requests and urllib3 nest it several levels deep)."""
    text = str(e)
    for pattern in (_SSL_REASON, _ERRNO_REASON):
        found = pattern.search(text)
        if found:
            return found.group(1).strip().rstrip(".,;:")
    if "Read timed out" in text:
        return "read timed out"
    return text.splitlines()[0][:200] if text else type(e).__name__
