"""What Kueue says about ant's jobs: their Workloads, queue positions, ClusterQueue quota.

Kueue's objects are CRDs, read as JSON dicts through the same client. A job submitted
with ``--queue`` is a StatefulSet Kueue manages: Kueue creates a Workload for it (owned
by the StatefulSet, labelled ``kueue.x-k8s.io/job-uid=<uid>``), reserves quota for it
in the LocalQueue's ClusterQueue (condition ``QuotaReserved``), admits it
(``Admitted``) and lifts the scheduling gates of its pods. The visibility API
(``visibility.kueue.x-k8s.io``) gives a pending Workload's position in its LocalQueue
and ClusterQueue. Every read here is optional: a cluster without Kueue, or a user who
may not read it, gets ``None``/empty answers, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ant.errors import AntError, ValidationError
from ant.jobs.model import parse_time

if TYPE_CHECKING:
    from ant.jobs.queue import Queue
from ant.kube import codec
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.quantity import parse_quantity

JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"


@dataclass(frozen=True)
class Workload:
    """A Kueue Workload, as far as ant shows it."""

    name: str
    namespace: str
    job: str  # the StatefulSet that owns it
    queue: str  # LocalQueue
    cluster_queue: str  # where it has quota reserved; "" while pending
    quota_reserved: bool
    admitted: bool
    admitted_at: datetime | None
    reason: str  # why it waits: the QuotaReserved=False (or Evicted) message, one line
    position: int | None = None  # in its LocalQueue, from the visibility API
    cluster_queue_position: int | None = None


@dataclass(frozen=True)
class Quota:
    """One resource of one flavor of a ClusterQueue."""

    cluster_queue: str
    flavor: str
    resource: str
    nominal: Fraction
    reserved: Fraction  # reserved by admitted (or admitting) workloads

    @property
    def free(self) -> Fraction:
        return max(Fraction(0), self.nominal - self.reserved)


def workload_from(obj: Mapping[str, Any]) -> Workload:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    reserved = conditions.get("QuotaReserved") or {}
    admitted = conditions.get("Admitted") or {}
    evicted = conditions.get("Evicted") or {}
    owner = next(
        (
            o.get("name", "")
            for o in meta.get("ownerReferences") or []
            if o.get("kind") == "StatefulSet"
        ),
        "",
    )
    is_admitted = admitted.get("status") == "True"
    reason = ""
    if not is_admitted:
        waiting = evicted if evicted.get("status") == "True" else reserved
        reason = " ".join(str(waiting.get("message") or "").split())
    return Workload(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        job=owner,
        queue=str(spec.get("queueName", "")),
        cluster_queue=str((status.get("admission") or {}).get("clusterQueue", "")),
        quota_reserved=reserved.get("status") == "True",
        admitted=is_admitted,
        admitted_at=parse_time(str(admitted.get("lastTransitionTime", "")))
        if is_admitted
        else None,
        reason=reason,
    )


def workloads(client: Client, namespace: str | None, selector: str | None = None) -> list[Workload]:
    """The Workloads of StatefulSets in scope; [] when Kueue is absent or unreadable."""
    try:
        listed = client.list(r.WORKLOADS, namespace, label_selector=selector)
    except AntError:
        return []
    return [w for w in (workload_from(item) for item in listed.items) if w.job]


def job_workload(client: Client, namespace: str, statefulset_uid: str) -> Workload | None:
    """The Workload of one job (by its StatefulSet's uid), with its queue position."""
    found = workloads(client, namespace, f"{JOB_UID_LABEL}={statefulset_uid}")
    if not found:
        return None
    return with_positions(client, found)[0]


def with_positions(client: Client, found: Iterable[Workload]) -> list[Workload]:
    """The pending ones get their positions from the visibility API (one GET per queue)."""
    from dataclasses import replace

    found = list(found)
    queues = {(w.namespace, w.queue) for w in found if not w.admitted and w.queue}
    positions: dict[tuple[str, str], tuple[int, int]] = {}
    for namespace, queue in sorted(queues):
        positions.update(pending_positions(client, namespace, queue))
    return [
        replace(w, position=p[0], cluster_queue_position=p[1])
        if (p := positions.get((w.namespace, w.name)))
        else w
        for w in found
    ]


def pending_positions(
    client: Client, namespace: str, queue: str
) -> dict[tuple[str, str], tuple[int, int]]:
    """(namespace, workload) -> (position in the LocalQueue, in the ClusterQueue), from 1."""
    path = r.VISIBLE_LOCAL_QUEUES.path(namespace, queue, "pendingworkloads")
    try:
        body = client.transport.request("GET", path, accept=codec.JSON).json()
    except (AntError, ValueError):
        return {}
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for item in body.get("items") or []:
        meta = item.get("metadata") or {}
        key = (str(meta.get("namespace", namespace)), str(meta.get("name", "")))
        out[key] = (
            int(item.get("positionInLocalQueue", 0)) + 1,
            int(item.get("positionInClusterQueue", 0)) + 1,
        )
    return out


def quotas(client: Client, names: Iterable[str] | None = None) -> list[Quota] | None:
    """Nominal quota and what is reserved, per ClusterQueue, flavor and resource.

    ``names``: only these ClusterQueues. None when ClusterQueues cannot be read.
    """
    try:
        listed = client.list(r.CLUSTER_QUEUES)
    except AntError:
        return None
    wanted = set(names) if names is not None else None
    out: list[Quota] = []
    for cq in listed.items:
        name = str((cq.get("metadata") or {}).get("name", ""))
        if wanted is not None and name not in wanted:
            continue
        reserved = {
            (f.get("name"), res.get("name")): _quantity(res.get("total"))
            for f in (cq.get("status") or {}).get("flavorsReservation") or []
            for res in f.get("resources") or []
        }
        for group in (cq.get("spec") or {}).get("resourceGroups") or []:
            for flavor in group.get("flavors") or []:
                for res in flavor.get("resources") or []:
                    key = (flavor.get("name"), res.get("name"))
                    out.append(
                        Quota(
                            cluster_queue=name,
                            flavor=str(key[0]),
                            resource=str(key[1]),
                            nominal=_quantity(res.get("nominalQuota")),
                            reserved=reserved.get(key, Fraction(0)),
                        )
                    )
    return out


def _quantity(value: Any) -> Fraction:
    try:
        return parse_quantity(str(value)) if value is not None else Fraction(0)
    except ValidationError:
        return Fraction(0)


def annotate(client: Client, queue: Queue) -> Queue:
    """The queue's Kueue jobs with Kueue's reason and positions, and the quota of their
    ClusterQueues (three reads more: Workloads, pending workloads per LocalQueue,
    ClusterQueues)."""
    from dataclasses import replace

    found = workloads(client, queue.namespace)
    by_job = {(w.namespace, w.job): w for w in with_positions(client, found)}
    items = []
    for waiting in queue.items:
        item, w = waiting, by_job.get((waiting.job.namespace, waiting.job.name))
        if w is not None and not w.admitted:
            item = replace(
                waiting,
                reason="QuotaReserved",
                message=w.reason or item.message,
                kueue_queue=w.queue,
                kueue_position=w.position,
                cluster_queue_position=w.cluster_queue_position,
            )
        items.append(item)
    names = {w.cluster_queue for w in by_job.values() if w.cluster_queue}
    names |= {cq for cq in _cluster_queues_of(client, {(w.namespace, w.queue) for w in found})}
    found_quotas = quotas(client, names)
    return replace(
        queue,
        items=tuple(items),
        quotas=tuple(found_quotas or ()),
    )


def _cluster_queues_of(client: Client, local_queues: set[tuple[str, str]]) -> set[str]:
    """The ClusterQueue of each LocalQueue (one GET each; there are few)."""
    out = set()
    for namespace, name in local_queues:
        try:
            lq = client.get(r.LOCAL_QUEUES, name, namespace)
        except AntError:
            continue
        cq = (lq.get("spec") or {}).get("clusterQueue")
        if cq:
            out.add(str(cq))
    return out
