"""Every ``-o json`` / ``-o yaml`` document ant prints, and the time format they share.

The shapes are a contract (docs/cli.md, docs/queueing.md, docs/rollout.md): fields are
only added, never renamed or removed, within ``API_VERSION``. The CLI renders these
dicts as they are; the cache's job endpoint answers with ``job_list`` in JSON.

Times are RFC 3339 in UTC as Kubernetes writes them (``2026-12-01T15:36:27Z``), from
``rfc3339`` alone; ``None`` (JSON ``null``) stands for "no time".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from ant.jobs.admission import Admission
    from ant.jobs.capacity import Capacity, NodeUsage
    from ant.jobs.identity import Identity
    from ant.jobs.kueue import Quota
    from ant.jobs.lifecycle import Event
    from ant.jobs.model import Job
    from ant.jobs.queue import Queue
    from ant.jobs.rollout.planner import PodState
    from ant.jobs.rollout.status import RevisionPods, RolloutStatus
    from ant.jobs.sweep import Sweep
    from ant.jobs.template import PodTemplate

API_VERSION = "ant.dev/v1"


@overload
def rfc3339(t: datetime, *, fraction: bool = False) -> str: ...
@overload
def rfc3339(t: None, *, fraction: bool = False) -> None: ...
@overload
def rfc3339(t: datetime | None, *, fraction: bool = False) -> str | None: ...
def rfc3339(t: datetime | None, *, fraction: bool = False) -> str | None:
    """``t`` in UTC, to the second (``fraction``: to the microsecond); None for None."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")


# ---- jobs ---------------------------------------------------------------------------------
def job_item(job: Job) -> dict[str, Any]:
    """One item of ``ant list -o json``: also the top of the Job and SubmittedJob documents."""
    return {
        "name": job.name,
        "namespace": job.namespace,
        "user": job.user_full or job.user,
        "status": job.status.value,
        "replicas": job.replicas,
        "ready": job.ready,
        "pending": job.pending,
        "updated": job.updated,
        "priority": job.priority,
        "createdAt": rfc3339(job.created_at),
        "labels": dict(job.labels),
        "meta": dict(job.meta),
        "description": job.description,
        "sweep": job.sweep or None,
        "preemptions": job.preemptions,
        "lastPreemptedAt": rfc3339(job.last_preempted_at),
        **job_ending(job),
        "gang": job.gang or None,
        **({"cluster": job.cluster} if job.cluster else {}),
    }


def job_ending(job: Job) -> dict[str, Any]:
    """How the job ends (docs/controller.md); part of every job item."""
    policy, record = job.policy, job.record
    return {
        "restarts": record.restarts,
        "maxRestarts": policy.max_restarts,
        "onFailure": policy.on_failure,
        "after": list(policy.after),
        "ttlSeconds": policy.ttl_seconds,
        "finishedAt": record.finished_at or None,
        "failure": record.failure or None,
        "failedReplica": record.failed_replica,
        "exits": [{"replica": i, **e.to_json()} for i, e in sorted(record.exits.items())],
        "restartLog": [r.to_json() for r in record.restart_log],
    }


def job_list(jobs: Sequence[Job], unanswered: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``ant list -o json`` (and the cache's job endpoint in JSON): kind JobList. Across
    clusters, ``unanswered``: each cluster that did not answer, and why."""
    document = {"apiVersion": API_VERSION, "kind": "JobList", "items": [job_item(j) for j in jobs]}
    if unanswered:
        document["unanswered"] = [{"cluster": c, "error": e} for c, e in unanswered.items()]
    return document


def submitted_job(job: Job) -> dict[str, Any]:
    """``ant submit -o json``: the job as just created (SubmittedJob in docs/cli.md)."""
    return {"apiVersion": API_VERSION, "kind": "Job", **job_item(job)}


def job_details(
    job: Job, events: Sequence[Event], admitted: Admission | None = None
) -> dict[str, Any]:
    """``ant show -o json``: a JobList item plus revisions, annotations, pods and events,
    and how its gang was admitted."""
    return {
        **submitted_job(job),
        "admission": _admission(admitted) if admitted else None,
        "updateRevision": job.update_revision,
        "currentRevision": job.current_revision,
        "annotations": dict(job.annotations),
        **(_template(job.template) if job.template is not None else {}),
        "pods": [
            {
                "index": p.index,
                "name": p.pod,
                "phase": p.phase,
                "ready": p.ready,
                "node": p.node,
                "restarts": p.restarts,
                "revision": p.revision,
                "createdAt": rfc3339(p.created_at),
                "reason": p.reason,
                "message": p.message,
                "images": dict(p.images),
                "exitCode": p.exit_code,
            }
            for p in job.pods
        ],
        "events": [
            {
                "time": e.time,
                "type": e.type,
                "reason": e.reason,
                "object": e.object,
                "message": e.message,
                "count": e.count,
            }
            for e in events
        ],
    }


def _admission(a: Admission) -> dict[str, Any]:
    return {
        "engine": a.engine.value,
        "admitted": a.admitted,
        "admittedAt": rfc3339(a.at),
        "reason": a.reason,
        "queue": a.queue or None,
        "clusterQueue": a.cluster_queue or None,
        "position": a.position,
    }


def _template(template: PodTemplate) -> dict[str, Any]:
    """What the pods run, from the pod template (never a Secret's value)."""
    return {
        "containers": [
            {
                "name": c.name,
                "init": c.init,
                "image": c.image,
                "command": list(c.command),
                "args": list(c.args),
                "requests": dict(c.requests),
                "limits": dict(c.limits),
                "env": [
                    {"name": e.name, "value": e.value, "valueFrom": e.value_from} for e in c.env
                ],
                "envFrom": list(c.env_from),
                "volumeMounts": [
                    {
                        "name": m.volume,
                        "mountPath": m.path,
                        "readOnly": m.read_only,
                        "subPath": m.sub_path,
                    }
                    for m in c.mounts
                ],
            }
            for c in template.containers
        ],
        "volumes": [{"name": v.name, "kind": v.kind, "source": v.source} for v in template.volumes],
        "nodeSelector": dict(template.node_selector),
    }


def sweep(plan: Sweep, jobs: Sequence[Job]) -> dict[str, Any]:
    """``ant submit --sweep ... -o json``: the sweep and its created jobs."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Sweep",
        "id": plan.id,
        "namespace": plan.namespace,
        "parameters": {p.key: list(p.values) for p in plan.parameters},
        "count": plan.count,
        "items": [
            {**job_item(j), "params": dict(planned.params)}
            for j, planned in zip(jobs, plan.jobs, strict=True)
        ],
    }


def sweep_across(parts: Sequence[tuple[Sweep, Sequence[Job]]]) -> dict[str, Any]:
    """``ant submit --clusters ... --sweep ... -o json``: one Sweep document of a sweep
    spread over clusters, its items in index order, each naming its cluster (the jobs
    carry it); ``namespace`` is None when the clusters' namespaces differ."""
    documents = [sweep(plan, jobs) for plan, jobs in parts]
    indexed = sorted(
        zip(
            (planned.index for plan, _ in parts for planned in plan.jobs),
            (item for document in documents for item in document["items"]),
            strict=True,
        ),
        key=lambda pair: pair[0],
    )
    namespaces = {document["namespace"] for document in documents}
    return {
        **documents[0],
        "namespace": namespaces.pop() if len(namespaces) == 1 else None,
        "items": [item for _, item in indexed],
    }


def whoami(identity: Identity, context: str, namespace: str) -> dict[str, Any]:
    """``ant whoami -o json``."""
    return {
        "username": identity.username,
        "label": identity.label,
        "uid": identity.uid,
        "groups": list(identity.groups),
        "context": context,
        "namespace": namespace,
    }


# ---- the queue ----------------------------------------------------------------------------
def submitted_at(job: Job) -> str | None:
    """When the job was submitted (``ant.dev/submitted-at``), else when it was created."""
    return job.annotations.get("ant.dev/submitted-at") or rfc3339(job.created_at)


def queue(waiting: Queue) -> dict[str, Any]:
    """``ant queue -o json``: stable (docs/queueing.md)."""
    now = waiting.now
    return {
        "apiVersion": API_VERSION,
        "kind": "Queue",
        "namespace": waiting.namespace,
        "items": [
            {
                "position": w.position,
                "name": w.job.name,
                "namespace": w.job.namespace,
                "user": w.job.user_full or w.job.user,
                "priority": w.job.priority,
                "priorityValue": w.priority_value,
                "status": w.status,
                "partial": w.partial,
                "pending": w.pending,
                "replicas": w.replicas,
                "requestsPerPod": {k: _number(v) for k, v in sorted(w.requests.items())},
                "pendingRequests": {k: _number(w.pending_requests(k)) for k in sorted(w.requests)},
                "heldRequests": {k: _number(w.held(k)) for k in sorted(w.requests)}
                if w.partial
                else {},
                "submittedAt": submitted_at(w.job),
                "waitingSince": rfc3339(w.waiting_since),
                "waitingSeconds": int((now - w.waiting_since).total_seconds())
                if w.waiting_since
                else None,
                "reason": w.reason,
                "message": w.message,
                "preemptions": w.job.preemptions,
                "lastPreemptedAt": rfc3339(w.job.last_preempted_at),
                "sweep": w.job.sweep or None,
                "gang": w.job.gang or None,
                "kueueQueue": w.kueue_queue or None,
                "kueuePosition": w.kueue_position,
                "clusterQueuePosition": w.cluster_queue_position,
            }
            for w in waiting.items
        ],
        "capacity": [_capacity(c) for c in waiting.capacity] if waiting.nodes_visible else None,
        "capacitySource": waiting.usage.source or None,
        "clusterRequested": {
            c.resource: _number(c.cluster_requested)
            for c in waiting.capacity
            if c.cluster_requested is not None
        }
        if waiting.usage.known
        else None,
        "quotas": [_quota(q) for q in waiting.quotas],
    }


def node_capacity(nodes: Sequence[NodeUsage]) -> dict[str, Any]:
    """The ant cache's ``/ant/v1/capacity``: per node, totals only (docs/cache.md)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "NodeCapacity",
        "nodes": [
            {
                "name": n.name,
                "ready": n.ready,
                "allocatable": {k: _number(v) for k, v in sorted(n.allocatable.items())},
                "requested": {k: _number(v) for k, v in sorted(n.requested.items())},
            }
            for n in nodes
        ],
    }


def queue_list(queues: Mapping[str, Queue], unanswered: Mapping[str, str]) -> dict[str, Any]:
    """``ant queue -o json`` across clusters: each cluster's Queue, with its ``cluster``."""
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "QueueList",
        "items": [{**queue(q), "cluster": cluster} for cluster, q in queues.items()],
    }
    if unanswered:
        document["unanswered"] = [{"cluster": c, "error": e} for c, e in unanswered.items()]
    return document


def _quota(q: Quota) -> dict[str, Any]:
    return {
        "clusterQueue": q.cluster_queue,
        "flavor": q.flavor,
        "resource": q.resource,
        "nominal": _number(q.nominal),
        "reserved": _number(q.reserved),
        "free": _number(q.free),
    }


def _capacity(c: Capacity) -> dict[str, Any]:
    return {
        "resource": c.resource,
        "nodes": c.nodes,
        "allocatable": _number(c.allocatable),
        "requestedByRunning": _number(c.running),
        "requestedByPending": _number(c.pending),
        "free": None if c.free is None else _number(c.free),
    }


# ---- rollouts ------------------------------------------------------------------------------
def rollout_status(status: RolloutStatus) -> dict[str, Any]:
    """``ant rollout status -o json`` (docs/rollout.md): stable."""
    return {
        "apiVersion": API_VERSION,
        "kind": "RolloutStatus",
        "name": status.name,
        "namespace": status.namespace,
        "replicas": status.replicas,
        "updateRevision": status.update_revision,
        "currentRevision": status.current_revision,
        "updated": status.updated,
        "state": status.state,
        "message": status.message,
        "paused": bool(status.paused),
        "pausedAt": status.paused_at or None,
        "pausedReason": status.paused or None,
        "rollout": {
            "targetRevision": status.target_revision or None,
            "startedAt": status.started_at or None,
            "finishedAt": status.finished_at or None,
        },
        "revisions": [_revision(rev) for rev in status.revisions],
        "unavailable": [_unavailable(p) for p in status.unavailable],
        "lastUpdate": dict(status.last_update) if status.last_update else None,
    }


def _revision(rev: RevisionPods) -> dict[str, Any]:
    from ant.jobs.rollout.options import format_indexes

    return {
        "name": rev.name,
        "revision": rev.number,
        "pods": len(rev.indexes),
        "ready": rev.ready,
        "replicas": format_indexes(rev.indexes),
        "update": rev.update,
    }


def _unavailable(pod: PodState) -> dict[str, Any]:
    return {
        "index": pod.index,
        "name": pod.name,
        "exists": pod.exists,
        "revision": pod.revision,
        "ready": pod.ready,
        "terminating": pod.terminating,
        "reason": pod.why() if not pod.available else "",
    }


def _number(value: Fraction) -> int | float:
    """A quantity in JSON: an integer when whole."""
    return int(value) if value.denominator == 1 else float(value)
