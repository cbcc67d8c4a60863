"""Seeding the cluster with bench jobs (reusable across runs) and removing them again.

Everything is created through ant's own client and labelled ``ant.dev/bench=list`` plus
``ant.dev/bench-run=<prefix>``. Seeding is idempotent: job ``i`` has a fixed name, so a
second run only creates the missing indices (and deletes indices >= N), then waits until
every pod is Running on the bench's kwok nodes.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any

from ant.errors import AlreadyExists, NotFound
from ant.kube import codec
from ant.kube import resources as r
from ant.kube.client import METADATA_LIST_ACCEPT, Client, Resource
from bench import workload
from bench.common import Deadline

# One client, 16 threads: its connection pool holds 32, and the apiserver (2 cores here)
# is the bottleneck well before that.
CREATE_THREADS = 16
POLL_SECONDS = 2.0
PROGRESS_SECONDS = 10.0


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_selector(prefix: str) -> str:
    return f"{workload.RUN_LABEL}={prefix}"


# --- reading without ant's list_metadata ---------------------------------------------------


def metadata_items(
    client: Client, path: str, *, label_selector: str, field_selector: str | None = None
) -> list[Any]:
    """PartialObjectMetadata of everything at ``path``: asked for with the metadata Accept.

    Not ``Client.list_metadata``: that one currently ignores its Accept header and
    downloads whole objects (see docs/benchmarks.md), which makes polling 10,000 pods slow.
    """
    params = {"labelSelector": label_selector, "fieldSelector": field_selector}
    resp = client.transport.request("GET", path, params=params, accept=METADATA_LIST_ACCEPT)
    return list(codec.decode(resp.content).items)  # type: ignore[attr-defined]


def json_items(client: Client, path: str) -> list[dict[str, Any]]:
    """For kinds ant has no protobuf type registered for (ServiceAccount)."""
    resp = client.transport.request("GET", path, accept=codec.JSON)
    items: list[dict[str, Any]] = resp.json().get("items") or []
    return items


# --- seeding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedReport:
    n: int
    existing: int
    created: int
    deleted: int
    nodes: int
    create_seconds: float
    ready_seconds: float  # from the first create until every pod Running
    total_seconds: float
    pods_running: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed(client: Client, prefix: str, n: int, timeout: float) -> SeedReport:
    """Make the cluster hold exactly jobs 0..n-1 of this prefix, with their pods Running."""
    started = time.monotonic()
    deadline = Deadline(timeout, f"seeding {n} jobs")
    ensure_namespaces(client, prefix, deadline)
    nodes = ensure_nodes(client, prefix, math.ceil(n / workload.PODS_PER_NODE))
    present = existing_jobs(client, prefix)
    missing = [i for i in range(n) if i not in present]
    extra = [where for i, where in present.items() if i >= n]
    if extra:
        log(f"deleting {len(extra)} jobs beyond N={n}")
        run_parallel(
            lambda where: _delete_ignoring_missing(client, *where), extra, deadline, "delete"
        )
    create_started = time.monotonic()
    if missing:
        log(f"creating {len(missing)} StatefulSets ({len(present)} already there)")
        run_parallel(lambda i: _create_job(client, prefix, i), missing, deadline, "create")
    created_at = time.monotonic()
    running = wait_for_pods(client, prefix, n, deadline)
    done = time.monotonic()
    return SeedReport(
        n=n,
        existing=len(present),
        created=len(missing),
        deleted=len(extra),
        nodes=nodes,
        create_seconds=round(created_at - create_started, 2),
        ready_seconds=round(done - create_started, 2),
        total_seconds=round(done - started, 2),
        pods_running=running,
    )


def ensure_namespaces(client: Client, prefix: str, deadline: Deadline) -> None:
    for i in range(workload.NAMESPACES_PER_RUN):
        _create_ignoring_existing(client, r.NAMESPACES, workload.namespace(prefix, i))
    # Pods are refused until the controller-manager has made each `default`
    # ServiceAccount, and the StatefulSet controller then backs off for minutes.
    for i in range(workload.NAMESPACES_PER_RUN):
        path = f"/api/v1/namespaces/{prefix}-{i}/serviceaccounts"
        while not any(sa["metadata"]["name"] == "default" for sa in json_items(client, path)):
            deadline.sleep(0.2, f"the default ServiceAccount in {prefix}-{i}")


def ensure_nodes(client: Client, prefix: str, count: int) -> int:
    """Bench nodes 0..count-1 (never removes any: pods may still run there)."""
    for i in range(max(count, 1)):
        _create_ignoring_existing(client, r.NODES, workload.node(prefix, i))
    return max(count, 1)


def existing_jobs(client: Client, prefix: str) -> dict[int, tuple[str, str]]:
    """index -> (namespace, name) of this prefix's jobs already in the cluster."""
    found: dict[int, tuple[str, str]] = {}
    for item in metadata_items(client, r.STATEFULSETS.path(), label_selector=run_selector(prefix)):
        index = workload.index_of(item.metadata.name)
        if index is not None:
            found[index] = (item.metadata.namespace, item.metadata.name)
    return found


def wait_for_pods(client: Client, prefix: str, n: int, deadline: Deadline) -> int:
    """Wait until exactly n pods of this prefix exist and all are Running; returns Running."""
    selector = run_selector(prefix)
    last_report = time.monotonic()
    while True:
        total = len(metadata_items(client, r.PODS.path(), label_selector=selector))
        running = len(
            metadata_items(
                client,
                r.PODS.path(),
                label_selector=selector,
                field_selector="status.phase=Running",
            )
        )
        if total == n and running == n:
            return running
        if time.monotonic() - last_report > PROGRESS_SECONDS:
            log(f"waiting for pods: {total} exist, {running} Running, want {n}")
            last_report = time.monotonic()
        deadline.sleep(POLL_SECONDS, f"{total} pods exist, {running} Running, want {n}")


def run_parallel(
    work: Callable[[Any], object], items: Iterable[Any], deadline: Deadline, what: str
) -> None:
    """``work`` over ``items`` on CREATE_THREADS threads sharing the one client."""
    items = list(items)
    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            for done, future in enumerate(as_completed(futures, timeout=deadline.remaining()), 1):
                future.result()
                if done % 1000 == 0:
                    log(f"{what}: {done}/{len(items)}")
        except BaseException:
            for future in futures:
                future.cancel()  # don't keep hammering the server after a failure
            raise


def _create_job(client: Client, prefix: str, index: int) -> None:
    _create_ignoring_existing(client, r.STATEFULSETS, workload.statefulset(prefix, index))


def _create_ignoring_existing(
    client: Client, resource: Resource[Any], manifest: dict[str, Any]
) -> None:
    """Create from a JSON manifest (ant's client sends dicts as JSON); fine if it exists."""
    with contextlib.suppress(AlreadyExists):
        client.create(resource, manifest, manifest["metadata"].get("namespace"))


def _delete_ignoring_missing(client: Client, namespace: str, name: str) -> None:
    with contextlib.suppress(NotFound):
        client.delete(r.STATEFULSETS, name, namespace)


# --- cleanup ----------------------------------------------------------------------------


def cleanup(client: Client, prefix: str, timeout: float) -> None:
    """Delete this prefix's namespaces, wait until they are gone, then its bench nodes.

    Nodes go last: pods still terminating on a deleted kwok node would hang until the
    pod garbage collector noticed.
    """
    deadline = Deadline(timeout, f"cleaning up bench run {prefix!r}")
    selector = run_selector(prefix)
    for ns in metadata_items(client, r.NAMESPACES.path(), label_selector=selector):
        if not ns.metadata.deletionTimestamp.seconds:
            _delete_namespace(client, ns.metadata.name)
    last_report = time.monotonic()
    while remaining := metadata_items(client, r.NAMESPACES.path(), label_selector=selector):
        if time.monotonic() - last_report > PROGRESS_SECONDS:
            log(f"waiting for {len(remaining)} namespaces to go away")
            last_report = time.monotonic()
        deadline.sleep(1.0, f"{len(remaining)} namespaces still terminating")
    for node in metadata_items(client, r.NODES.path(), label_selector=selector):
        with contextlib.suppress(NotFound):
            client.delete(r.NODES, node.metadata.name)


def _delete_namespace(client: Client, name: str) -> None:
    with contextlib.suppress(NotFound):
        client.delete(r.NAMESPACES, name)
