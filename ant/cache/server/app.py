"""Routing and handlers: ``CacheApp.handle`` turns a ``Request`` into a ``Reply``."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ant.cache import jobs as jobrows
from ant.cache.auth import Attributes, Authenticator, Authorizer, UserInfo
from ant.cache.metrics import Counter, Histogram, Registry
from ant.cache.selectors import parse_fields, parse_labels
from ant.cache.server import access
from ant.cache.server.discovery import discovery
from ant.cache.server.wire import (
    JSON,
    PROTOBUF,
    Reply,
    Request,
    failure,
    list_json,
    list_protobuf,
    negotiate,
    status_body,
)
from ant.cache.store import Kind, Store, rv_int
from ant.errors import ApiError, Status
from ant.jobs.identity import user_label
from ant.jobs.model import JobStatus
from ant.kube import codec

log = logging.getLogger("ant.cache.server")

DEFAULT_MAX_STALENESS = 5.0  # seconds a table may lag the API server and still be served


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
        max_staleness: float = DEFAULT_MAX_STALENESS,
        metrics: ServerMetrics | None = None,
        responses: ResponseCache | None = None,
    ) -> None:
        self.store = store
        self.authn = authenticator
        self.authz = authorizer
        self.registry = registry
        self.rv_wait = rv_wait
        self.max_staleness = max_staleness
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
            if route.endpoint in ("livez", "readyz"):
                self.check_read(request)
                reply = self.probe(route.endpoint)
            else:
                negotiated = negotiate(request.header("accept"))
                fmt = negotiated or JSON
                # A stranger learns nothing and costs nothing more: no method, body or
                # query is looked at before the token is (and bodies are never read).
                user = self.authenticate(request)
                self.check_read(request)
                if negotiated is None and route.endpoint in ("get", "list", "jobs"):
                    raise failure(406, "NotAcceptable", "only protobuf and JSON are served")
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                reply = self.serve(route, user, query, fmt)
        except ApiError as e:
            reply = self.status_reply(e.status, fmt)
        except Exception:
            log.exception("%s %s failed", request.method, request.target)
            reply = self.status_reply(Status(500, "InternalError", "internal error"), fmt)
        reply.endpoint = endpoint
        self.metrics.requests.inc(endpoint, str(reply.status))
        self.metrics.latency.observe(time.perf_counter() - started, endpoint)
        return reply

    @staticmethod
    def check_read(request: Request) -> None:
        """Refuse what is not a read: other methods (405), and bodies (413)."""
        if request.method not in ("GET", "HEAD"):
            raise failure(
                405, "MethodNotAllowed", f"the ant cache only serves reads, not {request.method}"
            )
        if request.has_body:
            raise failure(
                413, "RequestEntityTooLarge", "the ant cache serves reads: send no request body"
            )

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
            if rest == ["capacity"]:
                return Route("capacity")
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
        return access.authenticate(self.authn, request)

    def authorize(self, user: UserInfo, attrs: Attributes) -> bool:
        return access.authorize(self.authz, user, attrs)

    def require(self, user: UserInfo, attrs: Attributes) -> None:
        access.require(self.authz, user, attrs)

    # ---- serving ------------------------------------------------------------------
    def serve(self, route: Route, user: UserInfo, query: dict[str, str], fmt: str) -> Reply:
        if route.endpoint == "discovery":
            return discovery(route.name, self.store)
        if route.endpoint == "metrics":
            return access.metrics_reply(self.authz, user, self.registry)
        if query.get("watch") in ("true", "1"):
            raise failure(
                405,
                "MethodNotAllowed",
                "the ant cache does not serve watches; watch the API server",
            )
        if route.endpoint == "jobs":
            return self.jobs(route, user, query, fmt)
        if route.endpoint == "capacity":
            return self.capacity(user)
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
        self.check_ready((kind.name,), route.namespace, namespaced=kind.namespaced)
        self.wait_for_rv((kind.name,), query.get("resourceVersion", ""), route.namespace)
        if route.endpoint == "get":
            return self.get(kind, route, fmt)
        return self.list(kind, route.namespace, query, fmt)

    def check_ready(
        self, tables: Sequence[str], namespace: str | None, *, namespaced: bool = True
    ) -> None:
        """Refuse (503) a read the cache cannot answer within its promise, or out of scope."""
        if not self.store.synced:
            raise failure(
                503,
                "ServiceUnavailable",
                f"the ant cache is still loading {', '.join(self.store.unsynced())}",
                retry_after=1,
            )
        stale = self.store.stale(tables, self.max_staleness)
        if stale:
            raise failure(
                503,
                "ServiceUnavailable",
                f"the ant cache has not heard from the API server about {_ages(stale)}, more "
                f"than the {self.max_staleness:g}s it promises: read from the API server",
                retry_after=1,
            )
        if namespaced and not self.store.holds(namespace):
            where = f"namespace {namespace}" if namespace else "cluster-wide reads"
            raise failure(400, "BadRequest", f"{where}: not in what this ant cache watches")

    def wait_for_rv(self, tables: Sequence[str], rv: str, namespace: str | None) -> None:
        if rv in ("", "0"):
            return
        wanted = rv_int(rv)
        if wanted < 0:
            raise failure(
                400, "BadRequest", f"resourceVersion {rv!r}: the ant cache compares integers"
            )
        if not self.store.wait_for(tables, wanted, self.rv_wait, namespace):
            raise failure(
                504,
                "Timeout",
                f"Too large resource version: {rv}, the ant cache has not seen it yet",
                retry_after=1,
            )

    def get(self, kind: Kind, route: Route, fmt: str) -> Reply:
        entry = self.store.table(kind.name).get(route.namespace or "", route.name)
        if entry is None:
            raise failure(404, "NotFound", f'{kind.name} "{route.name}" not found')
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
        labels = parse_labels(labels_text)  # BadRequest: answered as its Status
        fields = parse_fields(fields_text, kind.supported_fields)
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
        names = ["statefulsets", "pods", *(["events"] if with_events else [])]
        self.check_ready(names, ns)
        self.wait_for_rv(("statefulsets",), query.get("resourceVersion", ""), ns)
        view = query.get("view", "table")
        if view not in jobrows.VIEWS:
            raise failure(
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
            raise failure(400, "BadRequest", f"unknown status {', '.join(sorted(unknown))}")
        selector_text = jobrows.query_selector(owner, query.get("selector") or None)
        key = ("jobs", ns, selector_text, tuple(sorted(statuses)), view, fmt, with_events)
        tables = [self.store.table(name) for name in names]
        version = tuple(t.version(ns) for t in tables)
        cached = self.responses.get(key, version)
        if cached is not None:
            self.metrics.responses.inc("hit")
            return Reply(200, fmt, cached)
        selector = parse_labels(selector_text)
        rows = jobrows.compute(self.store, ns, selector, statuses, events=with_events)
        body = jobrows.encode(rows, view) if fmt == PROTOBUF else jobrows.document(rows)
        self.responses.put(key, version, body)
        self.metrics.responses.inc("miss")
        return Reply(200, fmt, body)

    def capacity(self, user: UserInfo) -> Reply:
        """Per node what is allocatable and what the pods on it request, in total: free
        capacity for users who may list nodes but not every pod (no pod is named)."""
        from ant.cache.store import decode
        from ant.jobs.capacity import node_usage
        from ant.jobs.documents import node_capacity

        self.require(user, Attributes(verb="list", resource="nodes", group=""))
        names = ("nodes", "pods")
        self.check_ready(names, None)
        tables = [self.store.table(name) for name in names]
        version = tuple(t.version(None) for t in tables)
        cached = self.responses.get(("capacity",), version)
        if cached is not None:
            self.metrics.responses.inc("hit")
            return Reply(200, JSON, cached)
        nodes_table, pods_table = tables
        nodes = [decode(nodes_table.kind, e.raw) for e in nodes_table.select(None)[0]]
        pods = [decode(pods_table.kind, e.raw) for e in pods_table.select(None)[0]]
        body = json.dumps(node_capacity(node_usage(nodes, pods))).encode()
        self.responses.put(("capacity",), version, body)
        self.metrics.responses.inc("miss")
        return Reply(200, JSON, body)

    def probe(self, which: str) -> Reply:
        """livez: the process answers. readyz: every table loaded and within the promise."""
        if which == "livez":
            return Reply(200, "text/plain", b"ok\n")
        unsynced = self.store.unsynced()
        stale = self.store.stale(self.store.tables, self.max_staleness)
        if unsynced or stale:
            lines = [f"not synced: {', '.join(unsynced)}"] if unsynced else []
            if stale:
                lines.append(f"stale (over {self.max_staleness:g}s): {_ages(stale)}")
            body = "".join(line + "\n" for line in lines).encode()
            return Reply(503, "text/plain", body, {"Retry-After": "1"})
        return Reply(200, "text/plain", b"ok\n")

    def status_reply(self, status: Status, fmt: str) -> Reply:
        retry = status.retry_after_seconds
        headers = {"Retry-After": str(retry)} if retry else {}
        if status.code == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="ant-cache"'
        return Reply(status.code, fmt, status_body(status, fmt), headers)


def _ages(stale: dict[str, float]) -> str:
    return ", ".join(f"{name} for {age:.0f}s" for name, age in sorted(stale.items()))


def _not_found(path: str) -> ApiError:
    return failure(404, "NotFound", f"the ant cache does not serve {path}")
