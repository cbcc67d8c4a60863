"""Capacity: what nodes offer, what pods request, and what is free.

Free capacity is a cluster-wide fact: what the nodes offer minus what every pod bound to
them holds. A namespace's pods say nothing about the rest (``ant -n bob-private queue``
once said 32 TPUs were free while ``research`` held all 32). So ``Usage``, per node, comes
from one of:

- ``cluster``: a cluster-wide list of the pods that hold resources (bound to a node, not
  finished; ``HOLDING_PODS``), for users who may list pods everywhere;
- ``cache``: the ant cache's node totals (``/ant/v1/capacity``: per node what is
  allocatable and requested, never a pod), for users who may list nodes; the caller
  passes a function that asks it (this layer does not know the cache);
- neither: unknown, and ``Capacity.free`` is None unless the pods in scope already take
  everything: ant says so instead of guessing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ant.errors import Forbidden, ValidationError
from ant.jobs.spec import GPU_RESOURCE, TPU_RESOURCE
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.quantity import parse_quantity

ACCELERATORS = (TPU_RESOURCE, GPU_RESOURCE)
# Pods that hold resources: bound to a node and not finished.
HOLDING_PODS = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
UNKNOWN_WHY = "you may not list pods in every namespace, and no ant cache serves node totals"


@dataclass(frozen=True)
class NodeUsage:
    """One node: whether it takes pods, what it offers and what its pods request."""

    name: str
    ready: bool  # Ready and not cordoned
    allocatable: Mapping[str, Fraction]
    requested: Mapping[str, Fraction]

    def free(self, resource: str) -> Fraction:
        offered = self.allocatable.get(resource, Fraction(0))
        return max(Fraction(0), offered - self.requested.get(resource, Fraction(0)))


@dataclass(frozen=True)
class Usage:
    """The cluster's nodes and what is requested on them; ``source`` empty: unknown, why."""

    source: str  # "cluster", "cache", or ""
    nodes: tuple[NodeUsage, ...] = ()
    why_unknown: str = ""

    @property
    def known(self) -> bool:
        return bool(self.source)

    def requested(self, resource: str) -> Fraction:
        """Requested by the pods on Ready nodes."""
        return sum(
            (n.requested.get(resource, Fraction(0)) for n in self.nodes if n.ready),
            start=Fraction(0),
        )

    def free(self, resource: str) -> Fraction:
        """Free on Ready nodes, node by node (one node's spare TPUs do not fill another)."""
        return sum((n.free(resource) for n in self.nodes if n.ready), start=Fraction(0))


@dataclass(frozen=True)
class Capacity:
    resource: str
    allocatable: Fraction
    nodes: int  # Ready, schedulable nodes offering the resource
    running: Fraction  # requested by scheduled pods in scope
    pending: Fraction  # requested by unscheduled pods in scope
    cluster_requested: Fraction | None = None  # by every pod in the cluster; None: unknown
    cluster_free: Fraction | None = None

    @property
    def free(self) -> Fraction | None:
        """Free in the cluster; None when unknown. Without the cluster's usage it is known
        only when the pods in scope already take everything (then 0)."""
        if self.cluster_free is not None:
            return self.cluster_free
        return Fraction(0) if self.allocatable <= self.running else None


# ---- usage ---------------------------------------------------------------------------------
def holding_pods(client: Client) -> list[Any] | None:
    """Every pod of the cluster that holds resources; None when the user may not list them."""
    try:
        return list(client.list(r.PODS, field_selector=HOLDING_PODS).items)
    except Forbidden:
        return None


def cluster_usage(
    nodes: Sequence[Any] | None,
    pods: Iterable[Any] | None,
    cached: Callable[[], Sequence[NodeUsage] | None] | None = None,
) -> Usage:
    """The cluster's usage from the listed ``nodes`` (None: not allowed) and every holding
    pod (None: not allowed), else from ``cached`` (the cache's node totals), else unknown."""
    if nodes is None:
        return Usage("", why_unknown="you may not list nodes")
    if pods is not None:
        return Usage("cluster", tuple(node_usage(nodes, pods)))
    found = cached() if cached is not None else None
    if found is not None:
        return Usage("cache", tuple(found))
    return Usage("", why_unknown=UNKNOWN_WHY)


def node_usage(nodes: Iterable[Any], pods: Iterable[Any]) -> list[NodeUsage]:
    """Pure: each node with the requests of the pods bound to it (finished ones hold none)."""
    requested: dict[str, dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for pod in pods:
        if not pod.spec.nodeName or pod.status.phase in ("Succeeded", "Failed"):
            continue
        for resource, amount in pod_requests(pod.spec).items():
            requested[pod.spec.nodeName][resource] += amount
    return [
        NodeUsage(
            name=n.metadata.name,
            ready=node_ready(n),
            allocatable=quantities(n.status.allocatable),
            requested=dict(requested.get(n.metadata.name, {})),
        )
        for n in sorted(nodes, key=lambda n: str(n.metadata.name))
    ]


# ---- resources -------------------------------------------------------------------------------
def quantities(mapping: Mapping[str, Any]) -> dict[str, Fraction]:
    """A protobuf map of quantities as numbers; unreadable ones left out."""
    out: dict[str, Fraction] = {}
    for name, q in mapping.items():
        try:
            out[name] = parse_quantity(q.string)
        except ValidationError:
            continue
    return out


def pod_requests(pod_spec: Any) -> dict[str, Fraction]:
    """What the scheduler reserves for a pod: containers (plus sidecars) or the largest
    init container, whichever is more, plus overhead; pod-level requests where given."""
    total: dict[str, Fraction] = defaultdict(Fraction)
    for c in pod_spec.containers:
        for k, v in quantities(c.resources.requests).items():
            total[k] += v
    sidecars: dict[str, Fraction] = defaultdict(Fraction)
    init_peak: dict[str, Fraction] = defaultdict(Fraction)
    for c in pod_spec.initContainers:
        requests = quantities(c.resources.requests)
        if c.restartPolicy == "Always":  # a sidecar: runs alongside the containers
            for k, v in requests.items():
                sidecars[k] += v
        else:
            for k, v in requests.items():
                init_peak[k] = max(init_peak[k], v + sidecars[k])
    for k, v in sidecars.items():
        total[k] += v
    for k, v in init_peak.items():
        total[k] = max(total[k], v)
    for k, v in quantities(pod_spec.resources.requests).items():
        total[k] = v
    for k, v in quantities(pod_spec.overhead).items():
        total[k] += v
    return {k: v for k, v in total.items() if v}


def node_ready(node: Any) -> bool:
    if node.spec.unschedulable:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def capacity(
    resource: str, nodes: Iterable[Any], pods: Iterable[Any], cluster: Usage | None = None
) -> Capacity:
    """``resource`` on the Ready nodes; ``pods`` are those in scope; ``cluster``: the
    cluster's usage, when known, for what is free."""
    allocatable, count = Fraction(0), 0
    for node in nodes:
        q = node.status.allocatable.get(resource)
        if q is None or not node_ready(node):
            continue
        amount = parse_quantity(q.string)
        if amount:
            allocatable += amount
            count += 1
    running, pending = Fraction(0), Fraction(0)
    for pod in pods:
        if pod.status.phase in ("Succeeded", "Failed"):
            continue
        amount = pod_requests(pod.spec).get(resource, Fraction(0))
        if pod.spec.nodeName:
            running += amount
        elif not pod.metadata.HasField("deletionTimestamp"):
            pending += amount
    known = cluster is not None and cluster.known
    return Capacity(
        resource,
        allocatable,
        count,
        running,
        pending,
        cluster_requested=cluster.requested(resource) if cluster and known else None,
        cluster_free=cluster.free(resource) if cluster and known else None,
    )


def accelerators_in(nodes: Sequence[Any], pods: Sequence[Any]) -> list[str]:
    """The accelerator resources nodes offer or pods ask for; TPUs when there are none."""
    seen = {k for n in nodes for k in n.status.allocatable if k in ACCELERATORS}
    for pod in pods:
        seen.update(k for k in pod_requests(pod.spec) if k in ACCELERATORS)
    return [a for a in ACCELERATORS if a in seen] or [TPU_RESOURCE]
