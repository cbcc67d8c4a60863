"""``ant admin install-queues``: the Kueue objects a cluster needs for ant's jobs.

From the nodes: one ResourceFlavor per group of nodes that offer accelerators and share
the labels that tell node types apart (``FLAVOR_LABELS``), a ClusterQueue whose quota
per flavor is what those nodes offer (the accelerators, cpu and memory: Kueue admits a
workload only if every resource it asks for is covered), LocalQueues pointing at it,
and WorkloadPriorityClasses with the names and values of ant's PriorityClasses.
Creating is idempotent: what exists is reported and left alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from ant.errors import NotFound
from ant.jobs.priorities import LEVELS
from ant.jobs.spec import GPU_RESOURCE, TPU_RESOURCE
from ant.kube import resources as r
from ant.kube.client import Client, Resource
from ant.kube.quantity import parse_quantity

API_VERSION = f"{r.KUEUE}/{r.KUEUE_VERSION}"
ACCELERATORS = (TPU_RESOURCE, GPU_RESOURCE)
# Labels that tell node types apart (GKE's, then the well-known instance type).
FLAVOR_LABELS = (
    "cloud.google.com/gke-tpu-accelerator",
    "cloud.google.com/gke-tpu-topology",
    "cloud.google.com/gke-accelerator",
    "node.kubernetes.io/instance-type",
)
DEFAULT_FLAVOR = "default"
GIB = 1 << 30


@dataclass(frozen=True)
class Planned:
    resource: Resource[dict[str, Any]]
    object: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.object["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.object["metadata"].get("namespace")
        return str(namespace) if namespace else None


@dataclass(frozen=True)
class Installed:
    planned: Planned
    state: Literal["missing", "installed", "differs"]
    detail: str = ""


def plan(
    nodes: Iterable[Any],
    *,
    cluster_queue: str,
    local_queue: str,
    namespaces: Sequence[str],
) -> list[Planned]:
    """Every object, in the order they are created (flavors before the queue using them)."""
    flavors = _flavors(nodes)
    covered = sorted({res for _, quota in flavors.values() for res in quota})
    objects = [
        _object(r.RESOURCE_FLAVORS, name, {"nodeLabels": dict(labels)} if labels else {})
        for name, (labels, _) in sorted(flavors.items())
    ]
    objects.append(
        _object(
            r.CLUSTER_QUEUES,
            cluster_queue,
            {
                "namespaceSelector": {},  # any namespace with a LocalQueue pointing here
                "queueingStrategy": "BestEffortFIFO",
                # A higher WorkloadPriorityClass evicts lower ones, whole; opportunistic
                # (ant's lowest) has nothing below it, and goes first.
                "preemption": {"withinClusterQueue": "LowerPriority"},
                "resourceGroups": [
                    {
                        "coveredResources": covered,
                        "flavors": [
                            {
                                "name": name,
                                "resources": [
                                    {"name": res, "nominalQuota": _format(res, quota.get(res))}
                                    for res in covered
                                ],
                            }
                            for name, (_, quota) in sorted(flavors.items())
                        ],
                    }
                ],
            },
        )
    )
    objects += [
        _object(r.LOCAL_QUEUES, local_queue, {"clusterQueue": cluster_queue}, namespace=ns)
        for ns in namespaces
    ]
    for level in LEVELS:
        wpc = _object(r.WORKLOAD_PRIORITY_CLASSES, level.name, {})
        del wpc.object["spec"]
        wpc.object.update({"value": level.value, "description": level.description})
        objects.append(wpc)
    return objects


def install(client: Client, planned: Sequence[Planned], *, dry_run: bool) -> list[Installed]:
    """Create what is missing (unless ``dry_run``); report every object's state."""
    out = []
    for p in planned:
        try:
            found = client.get(p.resource, p.name, p.namespace)
        except NotFound:
            if not dry_run:
                client.create(p.resource, p.object, p.namespace)
            out.append(Installed(p, "missing"))
            continue
        out.append(_compare(p, found))
    return out


def _compare(p: Planned, found: dict[str, Any]) -> Installed:
    if p.resource is r.WORKLOAD_PRIORITY_CLASSES and found.get("value") != p.object["value"]:
        return Installed(
            p, "differs", f"value {found.get('value')}, ant expects {p.object['value']}"
        )
    if p.resource is r.LOCAL_QUEUES:
        target = (found.get("spec") or {}).get("clusterQueue")
        if target != p.object["spec"]["clusterQueue"]:
            return Installed(p, "differs", f"points at ClusterQueue {target}")
    return Installed(p, "installed")


def _object(
    resource: Resource[dict[str, Any]],
    name: str,
    spec: dict[str, Any],
    namespace: str | None = None,
) -> Planned:
    metadata: dict[str, Any] = {"name": name, "labels": {"ant.dev/managed-by": "ant"}}
    if namespace:
        metadata["namespace"] = namespace
    return Planned(
        resource,
        {"apiVersion": API_VERSION, "kind": resource.kind, "metadata": metadata, "spec": spec},
    )


def _flavors(
    nodes: Iterable[Any],
) -> dict[str, tuple[tuple[tuple[str, str], ...], dict[str, Fraction]]]:
    """Flavor name -> (its node labels, what its nodes offer), for nodes with accelerators."""
    groups: dict[tuple[tuple[str, str], ...], dict[str, Fraction]] = defaultdict(
        lambda: defaultdict(Fraction)
    )
    for node in nodes:
        allocatable = {k: parse_quantity(q.string) for k, q in node.status.allocatable.items()}
        if not any(allocatable.get(a) for a in ACCELERATORS) or node.spec.unschedulable:
            continue
        labels = tuple(
            (k, node.metadata.labels[k]) for k in FLAVOR_LABELS if k in node.metadata.labels
        )
        for res in (*ACCELERATORS, "cpu", "memory"):
            if allocatable.get(res):
                groups[labels][res] += allocatable[res]
    return {_flavor_name(labels): (labels, dict(quota)) for labels, quota in groups.items()}


def _flavor_name(labels: tuple[tuple[str, str], ...]) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", "-".join(v for _, v in labels).lower()).strip("-")
    return name[:63].rstrip("-") or DEFAULT_FLAVOR


def _format(resource: str, amount: Fraction | None) -> str:
    """A quantity as Kubernetes writes it: whole numbers, Gi for whole GiB, else m."""
    amount = amount or Fraction(0)
    if resource == "memory" and amount and amount % GIB == 0:
        return f"{amount // GIB}Gi"
    if amount.denominator == 1:
        return str(amount.numerator)
    return f"{int(amount * 1000)}m"
