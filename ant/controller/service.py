"""``ant controller run`` put together: informers, leader election, work queue, workers, HTTP.

Every replica of the controller keeps its informers warm (StatefulSets and pods with
``ant.dev/managed-by=ant``) and queues the jobs their events touch; only the leader's
workers take jobs off the queue. On becoming leader it queues every job once (it may
have missed anything), on losing the Lease its workers stop taking new ones.

HTTP: ``/livez`` (the process answers), ``/readyz`` (the informers have synced; a
stand-by is ready too: it is ready to lead), ``/metrics`` (Prometheus; needs ``get`` on
the non-resource URL ``/metrics``, by TokenReview and SubjectAccessReview, as the cache).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ant.cache.auth import Authenticator, AuthMetrics, Authorizer
from ant.cache.informer import Informer, InformerMetrics, Informers
from ant.cache.metrics import LabelValues, Registry
from ant.cache.server.access import authenticate, metrics_reply
from ant.cache.server.listener import Listener, serve
from ant.cache.server.wire import Reply, Request
from ant.cache.store import KINDS, Entry, Store, Strip
from ant.cache.tls import self_signed, server_context
from ant.controller.lease import LEASE_NAME, LEASE_NAMESPACE, LeaderElector, Timing
from ant.controller.reconciler import JobKey, ReconcileMetrics, Reconciler
from ant.controller.workqueue import WorkQueue
from ant.errors import AntError, ApiError, ConfigError
from ant.jobs import schema
from ant.kube.client import Client

log = logging.getLogger("ant.controller")


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8444
    plain_http: bool = False  # loopback only: tests, the dev cluster, benchmarks
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    cert_dir: Path = Path("ant-controller-certs")
    namespaces: tuple[str, ...] = ()  # watched one by one; empty: cluster-wide
    workers: int = 4
    lease_namespace: str = LEASE_NAMESPACE
    lease_name: str = LEASE_NAME
    timing: Timing = field(default_factory=Timing)
    identity: str = ""  # default: host name + a random suffix
    watch_timeout: int = 300

    def validate(self) -> None:
        if self.plain_http and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError("plain HTTP is for loopback only: bearer tokens travel in it")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError("--tls-cert-file and --tls-private-key-file go together")
        t = self.timing
        if not 0 < t.retry_period < t.renew_deadline < t.lease_duration:
            raise ConfigError(
                "leader election needs retry period < renew deadline < lease duration",
                hint="e.g. --lease-duration 15 --renew-deadline 10 --retry-period 2",
            )
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")


class ControllerApp:
    """The HTTP answers: probes without authentication, metrics with it."""

    def __init__(
        self, store: Store, authn: Authenticator, authz: Authorizer, registry: Registry
    ) -> None:
        self.store, self.authn, self.authz, self.registry = store, authn, authz, registry

    def handle(self, request: Request) -> Reply:
        path = request.target.split("?", 1)[0].rstrip("/")
        try:
            if path in ("/livez", "/healthz"):
                return Reply(200, "text/plain", b"ok\n")
            if path == "/readyz":
                unsynced = self.store.unsynced()
                if unsynced:
                    body = f"not synced: {', '.join(unsynced)}\n".encode()
                    return Reply(503, "text/plain", body, {"Retry-After": "1"})
                return Reply(200, "text/plain", b"ok\n")
            if path == "/metrics":
                return metrics_reply(self.authz, authenticate(self.authn, request), self.registry)
            return Reply(404, "text/plain", b"the ant controller serves /livez /readyz /metrics\n")
        except ApiError as e:
            return Reply(e.status.code, "text/plain", f"{e.status.message}\n".encode())
        except Exception:
            log.exception("%s %s failed", request.method, request.target)
            return Reply(500, "text/plain", b"internal error\n")


class ControllerService:
    def __init__(self, client: Client, review_client: Client, options: Options) -> None:
        options.validate()
        self.options = options
        self.client = client
        self.identity = options.identity or f"{socket.gethostname()}-{secrets.token_hex(3)}"
        self.registry = Registry()
        self.stop = threading.Event()
        self.store = Store(
            (KINDS["statefulsets"], KINDS["pods"]), Strip(), namespaces=options.namespaces
        )
        self.queue: WorkQueue[JobKey] = WorkQueue()
        self.reconciler = Reconciler(
            client,
            self.store.table("statefulsets"),
            self.store.table("pods"),
            self._reconcile_metrics(),
            strip=self.store.strip,
        )
        self.elector = LeaderElector(
            client,
            self.identity,
            namespace=options.lease_namespace,
            name=options.lease_name,
            timing=options.timing,
        )
        informer_metrics = InformerMetrics(
            events=self.registry.counter(
                "ant_controller_events_total",
                "Watch events, by resource and type.",
                ("resource", "type"),
            ),
            relists=self.registry.counter(
                "ant_controller_relists_total",
                "Lists after the first one (the watch expired: 410).",
                ("resource", "reason"),
            ),
            errors=self.registry.counter(
                "ant_controller_informer_errors_total",
                "List and watch failures, by resource and error.",
                ("resource", "error"),
            ),
        )
        on_change = {"statefulsets": self._statefulset_changed, "pods": self._pod_changed}
        self.informers = Informers(
            [
                Informer(
                    client,
                    table,
                    self.store.strip,
                    scope=scope,
                    watch_timeout=options.watch_timeout,
                    metrics=informer_metrics,
                    stop=self.stop,
                    label_selector=schema.mine_selector(),
                    on_change=on_change[name],
                    on_relist=self._queue_all,
                )
                for name, table in self.store.tables.items()
                for scope in self.store.scopes(table.kind)
            ],
            self.stop,
        )
        auth_metrics = AuthMetrics(
            cache=self.registry.counter(
                "ant_controller_auth_cache_total",
                "Metrics callers' reviews: hit in the cache, miss, shared.",
                ("review", "result"),
            ),
            reviews=self.registry.histogram(
                "ant_controller_review_duration_seconds",
                "Time for a TokenReview or SubjectAccessReview.",
                ("review",),
            ),
            errors=self.registry.counter(
                "ant_controller_review_errors_total", "Reviews that failed.", ("review",)
            ),
        )
        self.app = ControllerApp(
            self.store,
            Authenticator(review_client, metrics=auth_metrics),
            Authorizer(review_client, metrics=auth_metrics),
            self.registry,
        )
        self.listener: Listener | None = None
        self._workers: list[threading.Thread] = []

    def _reconcile_metrics(self) -> ReconcileMetrics:
        r = self.registry

        def depth() -> Iterable[tuple[LabelValues, float]]:
            return [(("ready",), float(len(self.queue))), (("delayed",), float(self.queue.delayed))]

        def leader() -> Iterable[tuple[LabelValues, float]]:
            return [((), 1.0 if self.elector.leading.is_set() else 0.0)]

        r.gauge(
            "ant_controller_queue_depth",
            "Jobs waiting: ready now, or delayed (TTLs, retries).",
            ("state",),
            depth,
        )
        r.gauge("ant_controller_leader", "1 while this replica holds the Lease.", (), leader)
        return ReconcileMetrics(
            duration=r.histogram(
                "ant_controller_reconcile_duration_seconds",
                "Time for one reconcile, by result (idle, changed, gone, conflict, error).",
                ("result",),
            ),
            transitions=r.counter(
                "ant_controller_transitions_total",
                "Steps made, by kind (succeeded, failed, restart-job, release, expire, ...).",
                ("kind",),
            ),
            writes=r.counter(
                "ant_controller_writes_total",
                "Requests that change the cluster, by verb and resource.",
                ("verb", "resource"),
            ),
        )

    # ---- events -> queue --------------------------------------------------------------
    def _statefulset_changed(self, entry: Entry) -> None:
        self.queue.add(entry.key)
        for dependant in self.reconciler.dependants(entry.key):
            self.queue.add(dependant)

    def _pod_changed(self, entry: Entry) -> None:
        key = self.reconciler.note(entry)
        if key is not None:
            self.queue.add(key)

    def _queue_all(self) -> None:
        entries, _ = self.store.table("statefulsets").select(None)
        for entry in entries:
            self.queue.add(entry.key)

    # ---- leading ----------------------------------------------------------------------
    def _started_leading(self) -> None:
        log.info("%s leads; reconciling every job", self.identity)
        self._queue_all()

    def _stopped_leading(self) -> None:
        log.warning("%s no longer leads", self.identity)

    def _work(self) -> None:
        leading = self.elector.leading
        while not self.stop.is_set():
            if not leading.wait(0.5) or not self.store.synced:
                continue
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                if not leading.is_set():
                    self.queue.add(key)  # not ours to do any more: the next leader will
                    continue
                recheck = self.reconciler.reconcile(key)
                self.queue.forget(key)
                if recheck is not None:
                    self.queue.add_after(key, recheck)
            except AntError as e:
                delay = self.queue.retry(key)
                log.info("job %s/%s: %s; again in %.2fs", *key, e, delay)
            except Exception:
                delay = self.queue.retry(key)
                log.exception("job %s/%s: unexpected error; again in %.2fs", *key, delay)
            finally:
                self.queue.done(key)

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        opts = self.options
        context = None
        if not opts.plain_http:
            cert, key = opts.tls_cert_file, opts.tls_key_file
            if not cert:
                cert, key = self_signed(opts.cert_dir, ["localhost", "127.0.0.1", opts.host])
            context = server_context(cert, key or "")
        try:
            self.listener = serve(self.app, opts.host, opts.port, context)
        except OSError as e:
            raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {e.strerror}") from e
        self.informers.start()
        threads = [
            threading.Thread(
                target=self.elector.run,
                args=(self.stop, self._started_leading, self._stopped_leading),
                name="leader-election",
                daemon=True,
            ),
            *(
                threading.Thread(target=self._work, name=f"worker-{i}", daemon=True)
                for i in range(opts.workers)
            ),
        ]
        for thread in threads:
            thread.start()
        self._workers = threads
        log.info("%s started (pid %d), listening on %s", self.identity, os.getpid(), self.url)

    @property
    def url(self) -> str:
        port = self.listener.port if self.listener else self.options.port
        scheme = "http" if self.options.plain_http else "https"
        return f"{scheme}://{self.options.host}:{port}"

    def close(self, timeout: float = 5.0) -> None:
        """Stop: workers finish their job, the Lease is released, informers end."""
        self.stop.set()
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.listener is not None:
            self.listener.close()
        self.informers.close()
