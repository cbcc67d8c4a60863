"""Whether a restarted replica gets its slot back (``ant restart``).

Deleting a pod frees what it holds on its node; the StatefulSet recreates it at once and
the scheduler places it like any new pod: after the pods already waiting that outrank it
(higher priority, or equal priority and older). On a full pool such a pod takes the freed
slot, and the restarted replica waits (Pending) in its place.

The rule: a waiting pod *competes* for the slot when it is unschedulable now (the
scheduler found no room for it), is not being deleted, belongs to another job, has a
priority at least the replica's, and fits in what the replica frees (it requests some
accelerator, and of each accelerator at most what the replica requests). A competitor
waiting means the pool has no room of that size left, and it would go first. Only
accelerators are compared; a replica that requests none is never at risk. ant sees the
waiting pods of every namespace when the user may list them, else the job's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ant.errors import Forbidden, SlotAtRisk, SlotLost
from ant.jobs import schema
from ant.jobs.capacity import ACCELERATORS, pod_requests
from ant.jobs.lifecycle import unschedulable
from ant.jobs.model import Job
from ant.kube import resources as r
from ant.kube.client import Client

WAITING_PODS = "spec.nodeName=,status.phase=Pending"


@dataclass(frozen=True)
class Competitor:
    namespace: str
    name: str
    priority: int


@dataclass(frozen=True)
class SlotCheck:
    requests: Mapping[str, Fraction]  # one replica's accelerators
    priority: int
    competitors: tuple[Competitor, ...] = ()  # in the order the scheduler takes them
    everywhere: bool = True  # False: only the job's namespace could be seen

    @property
    def at_risk(self) -> bool:
        return bool(self.competitors)

    def describe(self) -> str:
        """One line: what waits for the slot, and what a restart may cost."""
        first = self.competitors[0]
        seen = "" if self.everywhere else " in this namespace (others are not visible to you)"
        return (
            f"the pool has no room of this size: {len(self.competitors)} pod(s) of equal or "
            f"higher priority wait{seen}, first {first.namespace}/{first.name} (priority "
            f"{first.priority}): the restarted replica may lose its slot to them and wait Pending"
        )

    def refuse(self) -> None:
        """Raise ``SlotAtRisk`` when a restart may lose the slot."""
        if self.at_risk:
            raise SlotAtRisk(self.describe(), hint="restart anyway with risk_slot=True")


def lost_slots(pods: Sequence[Any]) -> None:
    """Raise ``SlotLost`` naming the first replaced pod that waits unschedulable."""
    for pod in pods:
        if why := unschedulable(pod):
            raise SlotLost(f"pod/{pod.metadata.name} lost its slot and is Pending: {why}")


def check(client: Client, job: Job, indexes: Sequence[int] | None) -> SlotCheck:
    """Whether restarting ``indexes`` (None: all) of ``job`` may cost it its slots."""
    chosen = {p.pod for p in job.pods if indexes is None or p.index in indexes}
    own = client.list(r.PODS, job.namespace, label_selector=f"{schema.JOB}={job.name}").items
    restarted = [p for p in own if p.metadata.name in chosen and p.spec.nodeName]
    if not restarted:
        return SlotCheck({}, 0)
    pod = restarted[0]
    requests = {k: v for k, v in pod_requests(pod.spec).items() if k in ACCELERATORS}
    priority = int(pod.spec.priority)
    if not requests:
        return SlotCheck(requests, priority)
    try:
        waiting, everywhere = client.list(r.PODS, field_selector=WAITING_PODS).items, True
    except Forbidden:
        waiting = client.list(r.PODS, job.namespace, field_selector=WAITING_PODS).items
        everywhere = False
    competitors = sorted(
        (p for p in waiting if _competes(p, job, requests, priority)),
        key=lambda p: (-int(p.spec.priority), p.metadata.creationTimestamp.seconds),
    )
    return SlotCheck(
        requests,
        priority,
        tuple(
            Competitor(p.metadata.namespace, p.metadata.name, int(p.spec.priority))
            for p in competitors
        ),
        everywhere,
    )


def _competes(pod: Any, job: Job, requests: Mapping[str, Fraction], priority: int) -> bool:
    meta = pod.metadata
    if meta.HasField("deletionTimestamp") or int(pod.spec.priority) < priority:
        return False
    if meta.namespace == job.namespace and meta.labels.get(schema.JOB) == job.name:
        return False  # the job's own pods wait for the same room
    waits = bool(unschedulable(pod))
    wants = {k: v for k, v in pod_requests(pod.spec).items() if k in ACCELERATORS}
    return (
        waits and bool(wants) and all(v <= requests.get(k, Fraction(0)) for k, v in wants.items())
    )
