"""The cache's HTTP API: Kubernetes-compatible reads, the job endpoint, probes, metrics.

``CacheApp.handle`` turns a ``Request`` into a ``Reply`` (no sockets: unit-testable);
``serve`` puts it behind a TLS ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive.

Every data request is authenticated (bearer token, TokenReview) and authorized
(SubjectAccessReview for its verb, resource and namespace) before anything is read, so
the cache never reveals an object its caller could not read from the API server:

    GET /api/v1/namespaces/{ns}/pods[/{name}]        (also services, events)
    GET /api/v1/pods, /api/v1/nodes[/{name}], ...    (cluster-wide: list at cluster scope)
    GET /apis/apps/v1/namespaces/{ns}/statefulsets[/{name}], /apis/apps/v1/statefulsets
    GET /ant/v1/namespaces/{ns}/jobs, /ant/v1/jobs   (?user= &mine=true &selector=
                                                     &status= &view=table|full)
    GET /api, /apis, /api/v1, /apis/apps/v1          (discovery, for kubectl --server)
    GET /metrics                                     (needs get on the non-resource URL)
    GET /livez, /readyz                              (no authentication: probes)

Lists take ``labelSelector`` and ``fieldSelector`` like the API server; every list and
the job endpoint take ``resourceVersion=N``: the answer waits (up to ``rv_wait``) until
the cache has seen N, else 504 with Retry-After (read-your-writes). Answers are
protobuf (``application/vnd.kubernetes.protobuf``, the Kubernetes envelope) or JSON, by
the Accept header as on the API server. Errors are ``meta.v1.Status`` in either form.

Serialized answers are kept per (path, selectors, format) and reused until the tables
they came from change (their generation), so a burst of identical reads costs one
serialization.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ant import __version__
from ant.cache import jobs as jobrows
from ant.cache.auth import Attributes, Authenticator, Authorizer, ReviewError, UserInfo
from ant.cache.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ant.cache.metrics import Counter, Histogram, Registry
from ant.cache.selectors import parse_fields, parse_labels
from ant.cache.store import Entry, Kind, Store, rv_int
from ant.errors import ApiError, BadRequest
from ant.jobs.identity import user_label
from ant.jobs.model import JobStatus
from ant.kube import codec

log = logging.getLogger("ant.cache.server")

PROTOBUF = codec.PROTOBUF
JSON = codec.JSON


# --- requests and replies --------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: Mapping[str, str]  # lower-case names

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: str = "other"


class Failure(Exception):
    """Answer with this Status (code, reason, message), in the caller's format."""

    def __init__(self, code: int, reason: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def _fail(e: ApiError) -> Failure:
    return Failure(e.status.code, e.status.reason, e.status.message)


# --- content negotiation ---------------------------------------------------------------


def negotiate(accept: str) -> str | None:
    """PROTOBUF or JSON, the first the Accept header allows in its order; None: 406.

    Media types with an ``as=`` conversion (Table, PartialObjectMetadata) are not
    served: a client listing them first gets the next one it accepts, as from the API
    server for types it cannot convert.
    """
    if not accept.strip():
        return JSON
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        options = dict(p.partition("=")[::2] for p in params)
        if "as" in options or options.get("q") in ("0", "0.0"):
            continue
        if media == PROTOBUF and options.get("stream") is None:
            return PROTOBUF
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


# --- the application -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    endpoint: str  # get, list, jobs, discovery, metrics, livez, readyz
    kind: Kind | None = None
    namespace: str | None = None  # None: cluster-wide
    name: str = ""


@dataclass
class ServerMetrics:
    requests: Counter  # endpoint, code
    latency: Histogram  # endpoint
    responses: Counter  # result: hit, miss


def server_metrics(registry: Registry) -> ServerMetrics:
    return ServerMetrics(
        requests=registry.counter(
            "ant_cache_requests_total",
            "Requests served, by endpoint and HTTP code.",
            ("endpoint", "code"),
        ),
        latency=registry.histogram(
            "ant_cache_request_duration_seconds",
            "Time to answer a request, from its headers to its last byte, by endpoint.",
            ("endpoint",),
        ),
        responses=registry.counter(
            "ant_cache_response_cache_total",
            "Serialized answers reused (hit) or made (miss).",
            ("result",),
        ),
    )


class ResponseCache:
    """Serialized answers by key, valid while their tables' generations are unchanged."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._data: dict[tuple[Any, ...], tuple[tuple[int, ...], bytes]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, key: tuple[Any, ...], version: tuple[int, ...]) -> bytes | None:
        found = self._data.get(key)
        return found[1] if found is not None and found[0] == version else None

    def put(self, key: tuple[Any, ...], version: tuple[int, ...], body: bytes) -> None:
        with self._lock:
            if key not in self._data and len(self._data) >= self._max:
                del self._data[next(iter(self._data))]  # the oldest
            self._data[key] = (version, body)


class CacheApp:
    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        authorizer: Authorizer,
        registry: Registry,
        *,
        rv_wait: float = 2.0,
        metrics: ServerMetrics | None = None,
        responses: ResponseCache | None = None,
    ) -> None:
        self.store = store
        self.authn = authenticator
        self.authz = authorizer
        self.registry = registry
        self.rv_wait = rv_wait
        self.metrics = metrics or server_metrics(registry)
        self.responses = responses or ResponseCache()

    # ---- entry point --------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        started = time.perf_counter()
        fmt = JSON
        endpoint = "other"
        try:
            split = urlsplit(request.target)
            path = split.path.rstrip("/") or "/"
            route = self.route(path)
            endpoint = (
                route.endpoint if route.kind is None else f"{route.endpoint} {route.kind.name}"
            )
            if request.method not in ("GET", "HEAD"):
                raise Failure(
                    405,
                    "MethodNotAllowed",
                    f"the ant cache only serves reads, not {request.method}",
                )
            if route.endpoint in ("livez", "readyz"):
                reply = self.probe(route.endpoint)
            else:
                negotiated = negotiate(request.header("accept"))
                if negotiated is None and route.endpoint in ("get", "list", "jobs"):
                    raise Failure(406, "NotAcceptable", "only protobuf and JSON are served")
                fmt = negotiated or JSON
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                user = self.authenticate(request)
                reply = self.serve(route, user, query, fmt)
        except Failure as f:
            reply = self.status_reply(f, fmt)
        except Exception:
            log.exception("%s %s failed", request.method, request.target)
            reply = self.status_reply(Failure(500, "InternalError", "internal error"), fmt)
        reply.endpoint = endpoint
        self.metrics.requests.inc(endpoint, str(reply.status))
        self.metrics.latency.observe(time.perf_counter() - started, endpoint)
        return reply

    # ---- routing ------------------------------------------------------------------
    def route(self, path: str) -> Route:
        parts = path.strip("/").split("/")
        if path in ("/livez", "/readyz", "/healthz"):
            return Route("readyz" if path == "/readyz" else "livez")
        if path == "/metrics":
            return Route("metrics")
        if path in ("/api", "/apis", "/api/v1", "/apis/apps/v1", "/version"):
            return Route("discovery", name=path)
        if parts[0] == "ant" and len(parts) >= 3 and parts[1] == "v1":
            rest = parts[2:]
            if rest == ["jobs"]:
                return Route("jobs")
            if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "jobs":
                return Route("jobs", namespace=rest[1])
            raise _not_found(path)
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            rest, group = parts[2:], ""
        elif parts[0] == "apis" and len(parts) >= 4 and parts[1:3] == ["apps", "v1"]:
            rest, group = parts[3:], "apps"
        else:
            raise _not_found(path)
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        table = self.store.tables.get(rest[0])
        kind = table.kind if table is not None else None
        if kind is None or kind.resource.group != group or len(rest) > 2:
            raise _not_found(path)
        if namespace is not None and not kind.namespaced:
            raise _not_found(path)
        if len(rest) == 2:
            if kind.namespaced and namespace is None:
                raise _not_found(path)
            return Route("get", kind, namespace, rest[1])
        return Route("list", kind, namespace)

    # ---- authentication -----------------------------------------------------------
    def authenticate(self, request: Request) -> UserInfo:
        scheme, _, token = request.header("authorization").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Failure(401, "Unauthorized", "Unauthorized: the ant cache needs a bearer token")
        try:
            user = self.authn.authenticate(token)
        except ReviewError as e:
            raise Failure(503, "ServiceUnavailable", str(e), retry_after=1) from e
        if user is None:
            raise Failure(401, "Unauthorized", "Unauthorized")
        return user

    def authorize(self, user: UserInfo, attrs: Attributes) -> bool:
        try:
            return self.authz.authorize(user, attrs).allowed
        except ReviewError as e:
            raise Failure(503, "ServiceUnavailable", str(e), retry_after=1) from e

    def require(self, user: UserInfo, attrs: Attributes) -> None:
        if not self.authorize(user, attrs):
            raise Failure(
                403,
                "Forbidden",
                f'{attrs.resource or attrs.path} is forbidden: User "{user.username}" cannot '
                f"{attrs.describe()}",
            )

    # ---- serving ------------------------------------------------------------------
    def serve(self, route: Route, user: UserInfo, query: dict[str, str], fmt: str) -> Reply:
        if route.endpoint == "discovery":
            return discovery(route.name, self.store)
        if route.endpoint == "metrics":
            self.require(user, Attributes(verb="get", path="/metrics"))
            return Reply(200, METRICS_CONTENT_TYPE, self.registry.render().encode())
        if query.get("watch") in ("true", "1"):
            raise Failure(
                405,
                "MethodNotAllowed",
                "the ant cache does not serve watches; watch the API server",
            )
        if route.endpoint == "jobs":
            return self.jobs(route, user, query, fmt)
        kind = route.kind
        assert kind is not None
        verb = "get" if route.endpoint == "get" else "list"
        self.require(
            user,
            Attributes(
                verb=verb,
                resource=kind.name,
                group=kind.resource.group,
                namespace=route.namespace or "",
                name=route.name,
            ),
        )
        self.check_scope(route.namespace, namespaced=kind.namespaced)
        self.wait_for_rv((kind.name,), query.get("resourceVersion", ""), route.namespace)
        if route.endpoint == "get":
            return self.get(kind, route, fmt)
        return self.list(kind, route.namespace, query, fmt)

    def check_scope(self, namespace: str | None, *, namespaced: bool = True) -> None:
        if not self.store.synced:
            raise Failure(
                503,
                "ServiceUnavailable",
                f"the ant cache is still loading {', '.join(self.store.unsynced())}",
                retry_after=1,
            )
        if namespaced and not self.store.holds(namespace):
            where = f"namespace {namespace}" if namespace else "cluster-wide reads"
            raise Failure(400, "BadRequest", f"{where}: not in what this ant cache watches")

    def wait_for_rv(self, tables: Sequence[str], rv: str, namespace: str | None) -> None:
        if rv in ("", "0"):
            return
        wanted = rv_int(rv)
        if wanted < 0:
            raise Failure(
                400, "BadRequest", f"resourceVersion {rv!r}: the ant cache compares integers"
            )
        if not self.store.wait_for(tables, wanted, self.rv_wait, namespace):
            raise Failure(
                504,
                "Timeout",
                f"Too large resource version: {rv}, the ant cache has not seen it yet",
                retry_after=1,
            )

    def get(self, kind: Kind, route: Route, fmt: str) -> Reply:
        entry = self.store.table(kind.name).get(route.namespace or "", route.name)
        if entry is None:
            raise Failure(404, "NotFound", f'{kind.name} "{route.name}" not found')
        api_version, kind_name = kind.resource.api_version, kind.resource.kind
        if fmt == PROTOBUF:
            return Reply(200, PROTOBUF, codec.encode_envelope(api_version, kind_name, entry.raw))
        head = f'{{"kind":"{kind_name}","apiVersion":"{api_version}",'.encode()
        return Reply(200, JSON, head + entry.json(kind)[1:])

    def list(self, kind: Kind, namespace: str | None, query: dict[str, str], fmt: str) -> Reply:
        labels_text = query.get("labelSelector", "")
        fields_text = query.get("fieldSelector", "")
        table = self.store.table(kind.name)
        key = ("list", kind.name, namespace, labels_text, fields_text, fmt)
        version = (table.version(namespace),)
        cached = self.responses.get(key, version)
        if cached is not None:
            self.metrics.responses.inc("hit")
            return Reply(200, fmt, cached)
        try:
            labels = parse_labels(labels_text)
            fields = parse_fields(fields_text, kind.supported_fields)
        except BadRequest as e:
            raise _fail(e) from e
        entries, rv = table.select(namespace, labels, fields)
        body = list_protobuf(kind, entries, rv) if fmt == PROTOBUF else list_json(kind, entries, rv)
        self.responses.put(key, version, body)
        self.metrics.responses.inc("miss")
        return Reply(200, fmt, body)

    def jobs(self, route: Route, user: UserInfo, query: dict[str, str], fmt: str) -> Reply:
        ns = route.namespace
        for resource, group in (("statefulsets", "apps"), ("pods", "")):
            self.require(
                user, Attributes(verb="list", resource=resource, group=group, namespace=ns or "")
            )
        with_events = "events" in self.store.tables and self.authorize(
            user, Attributes(verb="list", resource="events", namespace=ns or "")
        )
        self.check_scope(ns)
        self.wait_for_rv(("statefulsets",), query.get("resourceVersion", ""), ns)
        view = query.get("view", "table")
        if view not in jobrows.VIEWS:
            raise Failure(
                400, "BadRequest", f"view {view!r}: use one of {', '.join(jobrows.VIEWS)}"
            )
        owner = query.get("user") or None
        if query.get("mine") in ("true", "1"):
            owner = user_label(user.username)
        statuses = frozenset(
            s.strip().capitalize() for s in query.get("status", "").split(",") if s.strip()
        )
        unknown = statuses - {s.value for s in JobStatus}
        if unknown:
            raise Failure(400, "BadRequest", f"unknown status {', '.join(sorted(unknown))}")
        selector_text = jobrows.query_selector(owner, query.get("selector") or None)
        key = ("jobs", ns, selector_text, tuple(sorted(statuses)), view, fmt, with_events)
        tables = [self.store.table("statefulsets"), self.store.table("pods")]
        if with_events:
            tables.append(self.store.table("events"))
        version = tuple(t.version(ns) for t in tables)
        cached = self.responses.get(key, version)
        if cached is not None:
            self.metrics.responses.inc("hit")
            return Reply(200, fmt, cached)
        try:
            selector = parse_labels(selector_text)
        except BadRequest as e:
            raise _fail(e) from e
        rows = jobrows.compute(self.store, ns, selector, statuses, events=with_events)
        body = jobrows.encode(rows, view) if fmt == PROTOBUF else jobrows.document(rows)
        self.responses.put(key, version, body)
        self.metrics.responses.inc("miss")
        return Reply(200, fmt, body)

    def probe(self, which: str) -> Reply:
        if which == "livez":
            return Reply(200, "text/plain", b"ok\n")
        unsynced = self.store.unsynced()
        if unsynced:
            return Reply(
                503,
                "text/plain",
                f"not synced: {', '.join(unsynced)}\n".encode(),
                {"Retry-After": "1"},
            )
        return Reply(200, "text/plain", b"ok\n")

    def status_reply(self, f: Failure, fmt: str) -> Reply:
        headers = {"Retry-After": str(f.retry_after)} if f.retry_after else {}
        if f.code == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="ant-cache"'
        return Reply(f.code, fmt, status_body(f, fmt), headers)


def _not_found(path: str) -> Failure:
    return Failure(404, "NotFound", f"the ant cache does not serve {path}")


# --- encoding ----------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def list_protobuf(kind: Kind, entries: Sequence[Entry], rv: str) -> bytes:
    """``<Kind>List{metadata{resourceVersion}, items}`` from the items' stored bytes.

    Field 1 (ListMeta, whose field 2 is resourceVersion) and repeated field 2 (items)
    are length-delimited: writing them directly skips decoding and re-encoding every
    object.
    """
    rv_bytes = rv.encode()
    meta = b"\x12" + _varint(len(rv_bytes)) + rv_bytes
    parts = [b"\x0a", _varint(len(meta)), meta]
    for entry in entries:
        parts += (b"\x12", _varint(len(entry.raw)), entry.raw)
    return codec.encode_envelope(kind.resource.api_version, kind.list_kind, b"".join(parts))


def list_json(kind: Kind, entries: Sequence[Entry], rv: str) -> bytes:
    head = (
        f'{{"kind":"{kind.list_kind}","apiVersion":"{kind.resource.api_version}",'
        f'"metadata":{{"resourceVersion":{json.dumps(rv)}}},"items":['
    ).encode()
    return head + b",".join(e.json(kind) for e in entries) + b"]}"


def status_body(f: Failure, fmt: str) -> bytes:
    if fmt == PROTOBUF:
        from ant.kube.proto import meta_v1_pb2

        status = meta_v1_pb2.Status(
            metadata=meta_v1_pb2.ListMeta(),
            status="Failure",
            message=f.message,
            reason=f.reason,
            code=f.code,
        )
        if f.retry_after:
            status.details.retryAfterSeconds = f.retry_after
        return codec.encode(status, "v1", "Status")
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f.message,
        "reason": f.reason,
        "code": f.code,
    }
    if f.retry_after:
        doc["details"] = {"retryAfterSeconds": f.retry_after}
    return json.dumps(doc).encode()


# --- discovery ---------------------------------------------------------------------

_SHORT_NAMES = {
    "pods": ["po"],
    "services": ["svc"],
    "nodes": ["no"],
    "events": ["ev"],
    "statefulsets": ["sts"],
}


def discovery(path: str, store: Store) -> Reply:
    """Just enough of the API server's discovery for ``kubectl --server`` to list."""
    kinds = [t.kind for t in store.tables.values()]
    doc: dict[str, Any]
    if path == "/version":
        doc = {
            "major": "",
            "minor": "",
            "gitVersion": f"ant-cache-{__version__}",
            "platform": "python",
        }
    elif path == "/api":
        doc = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    elif path == "/apis":
        apps = {"groupVersion": "apps/v1", "version": "v1"}
        groups = [{"name": "apps", "versions": [apps], "preferredVersion": apps}]
        doc = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    else:
        group = "apps" if path == "/apis/apps/v1" else ""
        doc = {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "apps/v1" if group else "v1",
            "resources": [
                {
                    "name": k.name,
                    "singularName": k.resource.kind.lower(),
                    "namespaced": k.namespaced,
                    "kind": k.resource.kind,
                    "verbs": ["get", "list"],
                    "shortNames": _SHORT_NAMES.get(k.name, []),
                }
                for k in kinds
                if k.resource.group == group
            ],
        }
    return Reply(200, JSON, json.dumps(doc).encode())


# --- HTTP ------------------------------------------------------------------------------


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


__all__ = [
    "CacheApp",
    "Failure",
    "Listener",
    "Reply",
    "Request",
    "ResponseCache",
    "Route",
    "negotiate",
    "serve",
    "server_metrics",
]
