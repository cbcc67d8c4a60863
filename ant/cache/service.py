"""``ant cache serve`` put together: store, informers, delegated auth, metrics, HTTPS.

The CLI builds ``Options`` from its flags and a client from kubeconfig (or the
in-cluster service account), then ``CacheService(...).start()``. Nothing here prints
or exits; progress goes to the ``ant.cache`` loggers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ant.cache.auth import DEFAULT_TTL, Authenticator, AuthMetrics, Authorizer
from ant.cache.freshness import SETTLE
from ant.cache.informer import Informer, InformerMetrics, Informers
from ant.cache.metrics import LabelValues, Registry
from ant.cache.server.app import DEFAULT_MAX_STALENESS, CacheApp, server_metrics
from ant.cache.server.listener import Listener, serve
from ant.cache.store import KINDS, Store, Strip
from ant.cache.tls import self_signed, server_context
from ant.errors import ConfigError
from ant.kube.client import Client

log = logging.getLogger("ant.cache")

DEFAULT_IGNORED = ("kube-system", "kube-node-lease")


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8443
    namespaces: tuple[str, ...] = ()  # watched one by one; empty: cluster-wide
    ignore_namespaces: tuple[str, ...] = DEFAULT_IGNORED
    resources: tuple[str, ...] = tuple(KINDS)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    cert_dir: Path = Path("ant-cache-certs")
    tls_sans: tuple[str, ...] = ()
    strip: Strip = field(default_factory=Strip)
    token_ttl: float = DEFAULT_TTL
    allowed_ttl: float = DEFAULT_TTL
    denied_ttl: float = DEFAULT_TTL
    rv_wait: float = 2.0
    watch_timeout: int = 300
    max_staleness: float = DEFAULT_MAX_STALENESS
    plain_http: bool = False  # tests and benchmarks on loopback only

    def validate(self) -> None:
        unknown = set(self.resources) - set(KINDS)
        if unknown:
            raise ConfigError(
                f"cannot cache {', '.join(sorted(unknown))}",
                hint=f"the cache knows {', '.join(KINDS)}",
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError("--tls-cert-file and --tls-private-key-file go together")
        if not SETTLE <= self.max_staleness < float("inf"):
            raise ConfigError(
                f"--max-staleness {self.max_staleness:g}: use {SETTLE:g} seconds or more"
            )
        if self.plain_http and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError("plain HTTP is for loopback only: bearer tokens travel in it")


class CacheService:
    def __init__(self, client: Client, review_client: Client, options: Options) -> None:
        options.validate()
        self.options = options
        self.registry = Registry()
        self.store = Store(
            (KINDS[name] for name in options.resources),
            options.strip,
            namespaces=options.namespaces,
            ignored=options.ignore_namespaces,
        )
        self.stop = threading.Event()
        self._add_store_metrics()
        informer_metrics = InformerMetrics(
            events=self.registry.counter(
                "ant_cache_events_total",
                "Watch events applied to the store, by resource and type (BOOKMARK too).",
                ("resource", "type"),
            ),
            relists=self.registry.counter(
                "ant_cache_relists_total",
                "Lists after the first one: the watch's resourceVersion had expired (410).",
                ("resource", "reason"),
            ),
            errors=self.registry.counter(
                "ant_cache_informer_errors_total",
                "List and watch failures, by resource and error.",
                ("resource", "error"),
            ),
        )
        auth_metrics = AuthMetrics(
            cache=self.registry.counter(
                "ant_cache_auth_cache_total",
                "Authentication (token) and authorization (access) look-ups: hit in the "
                "cache, miss (a review was made), shared (merged into a review in flight).",
                ("review", "result"),
            ),
            reviews=self.registry.histogram(
                "ant_cache_review_duration_seconds",
                "Time for a TokenReview or SubjectAccessReview at the API server.",
                ("review",),
            ),
            errors=self.registry.counter(
                "ant_cache_review_errors_total",
                "Reviews that failed (not cached; the request got 503).",
                ("review",),
            ),
        )
        self.informers = Informers(
            [
                Informer(
                    client,
                    table,
                    options.strip,
                    scope=scope,
                    ignored=options.ignore_namespaces,
                    watch_timeout=options.watch_timeout,
                    metrics=informer_metrics,
                    stop=self.stop,
                )
                for table in self.store.tables.values()
                for scope in self.store.scopes(table.kind)
            ],
            self.stop,
        )
        self.app = CacheApp(
            self.store,
            Authenticator(review_client, ttl=options.token_ttl, metrics=auth_metrics),
            Authorizer(
                review_client,
                allowed_ttl=options.allowed_ttl,
                denied_ttl=options.denied_ttl,
                metrics=auth_metrics,
            ),
            self.registry,
            rv_wait=options.rv_wait,
            max_staleness=options.max_staleness,
            metrics=server_metrics(self.registry),
        )
        self.listener: Listener | None = None
        self.cert_file: str | None = options.tls_cert_file

    def _add_store_metrics(self) -> None:
        tables = self.store.tables

        def objects() -> Iterable[tuple[LabelValues, float]]:
            return [((name,), float(t.count)) for name, t in tables.items()]

        def age() -> Iterable[tuple[LabelValues, float]]:
            now = time.time()
            return [((n,), now - t.last_event) for n, t in tables.items() if t.last_event]

        def synced() -> Iterable[tuple[LabelValues, float]]:
            return [((name,), float(t.synced)) for name, t in tables.items()]

        def staleness() -> Iterable[tuple[LabelValues, float]]:
            return [((name,), t.freshness.staleness()) for name, t in tables.items()]

        def stored() -> Iterable[tuple[LabelValues, float]]:
            return [((name,), float(t.raw_bytes())) for name, t in tables.items()]

        def versions() -> Iterable[tuple[LabelValues, float]]:
            return [((name,), float(t.rv)) for name, t in tables.items()]

        r = self.registry
        r.gauge("ant_cache_objects", "Objects in the store, by resource.", ("resource",), objects)
        r.gauge(
            "ant_cache_last_event_age_seconds",
            "Seconds since the last event or bookmark was applied, by resource.",
            ("resource",),
            age,
        )
        r.gauge(
            "ant_cache_synced", "1 once the initial list is in, by resource.", ("resource",), synced
        )
        r.gauge(
            "ant_cache_staleness_seconds",
            "How far behind the API server a resource may be: 0 while its watches work, "
            "else seconds since it was last known current (reads answer 503 past "
            "--max-staleness).",
            ("resource",),
            staleness,
        )
        r.gauge(
            "ant_cache_stored_bytes",
            "Serialized (stripped) protobuf bytes held, by resource.",
            ("resource",),
            stored,
        )
        r.gauge(
            "ant_cache_resource_version",
            "The resourceVersion each resource's store has reached.",
            ("resource",),
            versions,
        )

    # ---- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Start the informers and the HTTPS listener (readyz turns 200 once synced)."""
        opts = self.options
        context = None
        if not opts.plain_http:
            if not self.cert_file:
                hosts = ["localhost", "127.0.0.1", *opts.tls_sans]
                if opts.host not in ("0.0.0.0", "::", ""):
                    hosts.insert(0, opts.host)
                cert, key = self_signed(opts.cert_dir, hosts)
                self.cert_file = cert
                log.info("serving with the self-signed certificate %s", cert)
            else:
                key = opts.tls_key_file or ""
            context = server_context(self.cert_file, key)
        self.informers.start()
        try:
            self.listener = serve(self.app, opts.host, opts.port, context)
        except OSError as e:
            self.informers.close()
            raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {e.strerror}") from e
        log.info("listening on %s", self.url)

    @property
    def url(self) -> str:
        port = self.listener.port if self.listener else self.options.port
        scheme = "http" if self.options.plain_http else "https"
        host = self.options.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}"

    def release_memory(self) -> None:
        """Hand the initial lists' garbage back to the OS (glibc keeps freed memory).

        The first list of a big cluster holds every decoded object at once; once they are
        stored as bytes, that peak is garbage that would otherwise stay in the RSS."""
        import contextlib
        import ctypes
        import gc

        gc.collect()
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)

    def close(self) -> None:
        self.stop.set()
        if self.listener is not None:
            self.listener.close()
        self.informers.close()
