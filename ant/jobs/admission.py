"""Whether, when and by which engine a gang job was admitted, or why it waits.

- PodGroup: the PodGroup's ``PodGroupInitiallyScheduled`` condition; True once the
  scheduler placed ``minCount`` pods together (when: its transition time); False with the
  scheduler's reason (``minCount (6) cannot be satisfied: ...``).
- Kueue: the job's Workload (``ant.jobs.kueue``): ``Admitted`` (when) or the
  ``QuotaReserved`` message (``insufficient unused quota for google.com/tpu in flavor
  ..., 8 more needed``), and its place in the LocalQueue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ant.errors import AntError
from ant.jobs import kueue
from ant.jobs.gang import Engine
from ant.jobs.model import Job
from ant.kube import resources as r
from ant.kube.client import Client

SCHEDULED = "PodGroupInitiallyScheduled"


@dataclass(frozen=True)
class Admission:
    engine: Engine
    admitted: bool
    at: datetime | None  # when it was admitted
    reason: str  # why it waits, one line ("" when admitted)
    queue: str = ""  # Kueue: the LocalQueue
    cluster_queue: str = ""
    position: int | None = None  # Kueue: place in the LocalQueue, from 1


def admission(client: Client, job: Job) -> Admission | None:
    """The job's admission by its engine; None for a job without a gang (or when the
    engine's object cannot be read)."""
    if job.gang == Engine.PODGROUP:
        try:
            group = client.get(r.PODGROUPS, job.name, job.namespace)
        except AntError:
            return None
        return podgroup_admission(group)
    if job.gang == Engine.KUEUE:
        workload = kueue.job_workload(client, job.namespace, job.uid)
        if workload is None:
            return Admission(Engine.KUEUE, False, None, "Kueue has not made a Workload yet")
        return kueue_admission(workload)
    return None


def podgroup_admission(group: Any) -> Admission:
    for c in group.status.conditions:
        if c.type == SCHEDULED:
            admitted = c.status == "True"
            at = datetime.fromtimestamp(c.lastTransitionTime.seconds, UTC) if admitted else None
            reason = "" if admitted else " ".join(f"{c.reason}: {c.message}".split())
            return Admission(Engine.PODGROUP, admitted, at, reason)
    return Admission(Engine.PODGROUP, False, None, "the scheduler has not tried the group yet")


def kueue_admission(workload: kueue.Workload) -> Admission:
    return Admission(
        Engine.KUEUE,
        workload.admitted,
        workload.admitted_at,
        "" if workload.admitted else workload.reason or "waiting for quota",
        queue=workload.queue,
        cluster_queue=workload.cluster_queue,
        position=workload.position,
    )
