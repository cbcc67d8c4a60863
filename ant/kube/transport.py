"""The one path every request to an API server (or ant's cache) takes.

A ``Transport`` owns one pooled ``requests.Session`` for a connection: TLS,
credentials, the ``User-Agent``, timeouts on every call, retries, and turning
every failure into an ``ant.errors`` exception (a ``meta.v1.Status`` error body
becomes the matching ``ApiError``; no answer at all a ``TransportError``).

Retries, with exponential backoff and full jitter, honouring ``Retry-After``:
- a connection that could not be made: any method (nothing was sent);
- 429 Too Many Requests: any method (the server did not process it);
- 5xx, read timeouts and broken responses: idempotent requests only (GET by default);
- 401: once, after the credentials were refreshed (token file re-read, exec plugin re-run).

A ``Deadline`` bounds how long all of that may take: every attempt's timeouts stop
at it, and no retry starts once it has passed (then ``DeadlineExceeded``, final).

Below that, two engines move the bytes: a ``requests.Session`` (``session``), and, with
``stdlib_http=True`` (the ``ant`` command), ``ant.kube.stdhttp`` for whole and streamed
requests, which spares a command the import of ``requests`` (proxies still use it). Both report
a failed exchange as a ``WireError``; what follows (retry or not, which error) is decided
here, once. Tests inject faults with a scripted HTTP server: the HTTP layer.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ant import __version__
from ant.errors import (
    ApiError,
    DeadlineExceeded,
    TransportError,
)
from ant.kube import codec, failures
from ant.kube.auth import Auth, for_kubeconfig, material_file
from ant.kube.config import KubeConfig
from ant.kube.stdhttp import Connections, Reply, WireError, reason

if TYPE_CHECKING:
    import requests
    import requests.adapters

log = logging.getLogger("ant.kube.transport")

ACCEPT_PROTOBUF = f"{codec.PROTOBUF}, {codec.JSON}"
USER_AGENT = f"ant/{__version__}"
# How long after the server was unreachable a 403 may still be its authorizer starting.
RESTART_GRACE = 30.0
Params = Mapping[str, str | int | bool | None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float = 0.0) -> float:
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        return min(self.max_retry_after, max(retry_after, backoff))


class Deadline:
    """How long a command waits for an API server that does not answer, retries included.

    Fixed from its creation, for the command as a whole. ``extend`` makes room for a
    wait the user asked for (``--wait --timeout``); ``per_call`` is for commands that
    run until stopped (``logs -f``, ``list --watch``, rollouts): each call, with its
    retries, then gets the whole budget. ``hint`` says how to change it (the CLI names
    its option; this layer does not know it). Streams are bounded until their body
    starts to flow: a stream's body has its own read timeout.
    """

    def __init__(
        self, seconds: float, *, hint: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.hint = hint
        self._clock = clock
        self._ends: float | None = clock() + seconds

    def extend(self, seconds: float) -> None:
        if self._ends is not None:
            self._ends += seconds

    def per_call(self) -> None:
        self._ends = None

    def call_ends(self) -> float:
        """When a call starting now must be done."""
        return self._clock() + self.seconds if self._ends is None else self._ends

    def remaining(self, ends: float) -> float:
        return ends - self._clock()

    def exceeded(self, host: str, why: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{host} did not answer within the {self.seconds:g}s deadline ({why})",
            hint=self.hint or None,
        )


_NO_DEADLINE = Deadline(math.inf)


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    content: bytes = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_protobuf(self) -> bool:
        return self.content_type.startswith(codec.PROTOBUF)

    def json(self) -> Any:
        return json.loads(self.content)


class Transport:
    def __init__(
        self,
        server: str,
        *,
        auth: Auth,
        verify: bool | str = True,
        proxy_url: str | None = None,
        tls_server_name: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        pool_size: int = 32,
        sleep: Callable[[float], None] = time.sleep,
        deadline: Deadline | None = None,
        stdlib_http: bool = False,
    ) -> None:
        self.server = server.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry = retry or RetryPolicy()
        self.deadline = deadline
        self._sleep = sleep
        # Called before a 401 or 403 is raised (the CLI forgets the remembered identity).
        self.on_denied: Callable[[], None] | None = None
        # When the server last could not be reached (monotonic): see _starting_up.
        self._unreachable_at = -math.inf
        # Passed on every request: requests lets $REQUESTS_CA_BUNDLE override a
        # session-level `verify`, which would silently ignore kubeconfig's CA.
        self.verify = verify
        self.proxies = {"https": proxy_url, "http": proxy_url} if proxy_url else None
        self.tls_server_name = tls_server_name
        self.pool_size = pool_size
        self._session: requests.Session | None = None
        self.stdlib_http = stdlib_http  # asked for; a proxy still goes through requests
        self.connections = (
            Connections(
                self.server,
                verify=verify,
                client_cert=auth.client_cert,
                server_name=tls_server_name,
                user_agent=USER_AGENT,
                size=pool_size,
            )
            if stdlib_http and not proxy_url
            else None
        )

    @property
    def session(self) -> requests.Session:
        """The requests engine: every request without ``stdlib_http``, streams with it."""
        if self._session is None:
            import requests
            import urllib3
            from requests.adapters import HTTPAdapter

            if self.verify is False:
                # urllib3 would warn twice per request; whoever turned verification off
                # warns once (the CLI, per command).
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            session.mount(
                "https://",
                _server_name_adapter(self.tls_server_name, self.pool_size)
                if self.tls_server_name
                else HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size, max_retries=0),
            )
            session.mount("http://", HTTPAdapter(pool_maxsize=self.pool_size, max_retries=0))
            self._session = session
        return self._session

    @classmethod
    def from_kubeconfig(cls, kc: KubeConfig, **kwargs: Any) -> Transport:
        cluster = kc.cluster
        verify: bool | str = True
        if cluster.insecure_skip_tls_verify:
            verify = False
        elif cluster.ca_file:
            verify = cluster.ca_file
        elif cluster.ca_data:
            verify = material_file(cluster.ca_data)
        return cls(
            cluster.server,
            auth=for_kubeconfig(kc),
            verify=verify,
            proxy_url=cluster.proxy_url,
            tls_server_name=cluster.tls_server_name,
            **kwargs,
        )

    def close(self) -> None:
        if self.connections is not None:
            self.connections.close()
        if self._session is not None:
            self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = ACCEPT_PROTOBUF,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> Response:
        """Send one request (with retries) and return the whole successful response."""
        resp = self._send(method, path, params, body, content_type, accept, timeout, idempotent)
        try:
            return Response(
                resp.status_code,
                resp.headers.get("Content-Type", ""),
                resp.content,
                dict(resp.headers),
            )
        finally:
            resp.close()

    @contextmanager
    def stream(
        self,
        path: str,
        *,
        params: Params | None = None,
        accept: str = ACCEPT_PROTOBUF,
        read_timeout: float | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[tuple[str, Iterator[bytes]]]:
        """A GET whose body arrives over time (watches, followed logs, big lists).

        Yields the content type and an iterator of raw chunks: each as it arrives, or
        at most ``chunk_size`` bytes at a time. A connection that breaks mid-stream
        raises ``TransportError`` from the iterator.
        """
        resp = self._send("GET", path, params, None, None, accept, read_timeout, True, stream=True)
        # The deadline bounded the wait for the answer; its body has its own read timeout.
        seconds = read_timeout or self.timeout
        if isinstance(resp, Reply):
            assert resp.body is not None
            resp.body.set_read_timeout(seconds)
            chunks = _wire_chunks(resp.url, resp.body.chunks(chunk_size))
        else:
            _set_read_timeout(resp, seconds)
            chunks = _chunks(resp, chunk_size)
        try:
            yield resp.headers.get("Content-Type", ""), chunks
        finally:
            resp.close()

    def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
        timeout: float | None,
        idempotent: bool | None,
        *,
        stream: bool = False,
    ) -> requests.Response | Reply:
        idempotent = method in ("GET", "HEAD") if idempotent is None else idempotent
        url = self.server + path
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        deadline = self.deadline or _NO_DEADLINE
        ends = deadline.call_ends()
        refreshed = False
        attempt = 0
        while True:
            headers = {"Accept": accept, **self.auth.headers()}
            if content_type:
                headers["Content-Type"] = content_type
            started = time.monotonic()
            try:
                resp = self._exchange(
                    method,
                    url,
                    path,
                    query,
                    body,
                    headers,
                    self._timeouts(deadline, ends, timeout or self.timeout, url),
                    stream,
                )
            except WireError as e:
                log.info("%s %s failed after %s: %s", method, url, _since(started), e.reason)
                error = failures.transport_error(e, url)
                if deadline.remaining(ends) <= 0:
                    raise deadline.exceeded(failures.host_of(url), e.reason) from e
                # A TLS failure stays one; a read timeout may mean the server is busy with it.
                retryable = e.kind in ("connect", "broken") or (e.kind == "timeout" and not e.sent)
                if e.kind in ("connect", "broken"):
                    self._unreachable_at = time.monotonic()
                if retryable and (idempotent or not e.sent) and attempt + 1 < self.retry.attempts:
                    self._sleep_before_retry(deadline, ends, attempt, method, url, e.reason)
                    attempt += 1
                    continue
                raise error from e
            _log_call(method, resp, headers, started, attempt, stream)
            if resp.status_code < 400:
                return resp
            error_ = failures.api_error_of(resp)
            resp.close()
            if resp.status_code == 401 and not refreshed and self.auth.refresh():
                refreshed = True
                continue
            # A restarting server's 403s last until its authorizer is ready, seconds on a
            # loaded machine: they are tried again until the grace ends, not `attempts`
            # times (attempts the outage itself may have used up). A policy of one
            # attempt (the cache's, completion's) still means one.
            starting = self._starting_up(resp.status_code) and self.retry.attempts > 1
            retry = starting or _should_retry(error_, idempotent)
            if retry and (starting or attempt + 1 < self.retry.attempts):
                self._sleep_before_retry(
                    deadline, ends, attempt, method, url, str(error_), error_.retry_after
                )
                attempt += 1
                continue
            if resp.status_code in (401, 403) and self.on_denied is not None:
                self.on_denied()
            raise error_

    def _starting_up(self, status: int) -> bool:
        """A 403 soon after the server could not be reached is a restarted API server whose
        authorizer has not loaded RBAC yet, not a refusal: worth another attempt (a
        refused request was not carried out, so even a create may be sent again)."""
        return status == 403 and time.monotonic() - self._unreachable_at < RESTART_GRACE

    def _exchange(
        self,
        method: str,
        url: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        headers: Mapping[str, str],
        timeouts: tuple[float, float],
        stream: bool,
    ) -> requests.Response | Reply:
        """One request on the wire, by either engine; no answer at all is a WireError."""
        if self.connections is not None:
            return self.connections.send(
                method, path, query, body, headers, timeouts, stream=stream
            )
        import requests

        try:
            return self.session.request(
                method,
                url,
                params=query,
                data=body,
                headers=headers,
                cert=self.auth.client_cert(),
                verify=self.verify,
                proxies=self.proxies,
                timeout=timeouts,
                stream=stream,
            )
        except requests.exceptions.RequestException as e:
            raise failures.wire_error(e) from e

    def _timeouts(
        self, deadline: Deadline, ends: float, read: float, url: str
    ) -> tuple[float, float]:
        """(connect, read) timeouts for one attempt, never reaching past the deadline."""
        remaining = deadline.remaining(ends)
        if remaining <= 0:
            raise deadline.exceeded(failures.host_of(url), "no time left for another attempt")
        return min(self.connect_timeout, remaining), min(read, remaining)

    def _sleep_before_retry(
        self,
        deadline: Deadline,
        ends: float,
        attempt: int,
        method: str,
        url: str,
        why: str,
        retry_after: float = 0.0,
    ) -> None:
        delay = self.retry.delay(attempt, retry_after)
        if delay >= deadline.remaining(ends):
            raise deadline.exceeded(failures.host_of(url), why)  # the retry could not start in time
        log.info("retrying %s %s in %.2fs: %s", method, url, delay, why)
        self._sleep(delay)


# Never logged as they are: a credential in a log is a leaked credential.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _since(started: float) -> str:
    return f"{(time.monotonic() - started) * 1000:.1f}ms"


def _log_call(
    method: str,
    resp: requests.Response | Reply,
    sent: Mapping[str, str],
    started: float,
    attempt: int,
    stream: bool,
) -> None:
    """``-v``: one line per API call (method, URL, status, time to the answer: for a
    stream, to its headers); ``-vv`` adds the size and attempt, and the headers ant sent
    and received, credentials masked."""
    log.info("%s %s %d %s", method, resp.url, resp.status_code, _since(started))
    if not log.isEnabledFor(logging.DEBUG):
        return
    length = resp.headers.get("Content-Length")
    size = f"{length} bytes" if length else "streamed" if stream else f"{len(resp.content)} bytes"
    log.debug("  timing: %s, body %s, attempt %d", _since(started), size, attempt + 1)
    for direction, headers in (
        (">", {"User-Agent": USER_AGENT, **sent}),
        ("<", dict(resp.headers.items())),
    ):
        for name, value in sorted(headers.items()):
            shown = "<masked>" if name.lower() in _SECRET_HEADERS else value
            log.debug("  %s %s: %s", direction, name, shown)


def _should_retry(error: ApiError, idempotent: bool) -> bool:
    code = error.status.code
    return code == 429 or (idempotent and code >= 500)


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _set_read_timeout(resp: requests.Response, seconds: float) -> None:
    connection = getattr(resp.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _chunks(resp: requests.Response, chunk_size: int | None) -> Iterator[bytes]:
    import requests

    try:
        # chunk_size=None yields data as soon as it arrives on a chunked stream.
        yield from resp.iter_content(chunk_size=chunk_size)
    except (requests.exceptions.RequestException, OSError) as e:
        raise TransportError(f"stream from {resp.url} broke: {reason(e)}") from e


def _wire_chunks(url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except WireError as e:
        raise TransportError(f"stream from {url} broke: {e.reason}") from e


def _server_name_adapter(server_name: str, pool_size: int) -> requests.adapters.HTTPAdapter:
    """An adapter that checks the server certificate against ``tls-server-name``, not the URL."""
    from requests.adapters import HTTPAdapter

    class ServerNameAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["server_hostname"] = server_name
            kwargs["assert_hostname"] = server_name
            super().init_poolmanager(*args, **kwargs)

    return ServerNameAdapter(pool_maxsize=pool_size, max_retries=0)
