"""A job as ant shows it: a StatefulSet joined with its pods, read from protobuf as is.

Status (first rule that matches):

- Terminating: the StatefulSet is being deleted.
- Incomplete: its submit did not finish (``schema.SERVICE_PENDING``): the Service may be
  missing. ``ant delete`` removes it.
- Succeeded / Failed: the controller ended it (label ``ant.dev/phase``; docs/controller.md).
- Restarting: pods of the previous attempt are being removed (a whole-job restart).
- Degraded: a pod failed or a container cannot run (crash loop, image pull, config).
- Queued: a gang job (PodGroup or Kueue, ``ant.jobs.gang``) with no pod scheduled: it
  waits to be admitted whole.
- Pending: no pod is scheduled.
- Partial: some pods are scheduled, some are not (a gang job wastes what it holds).
- Updating: every pod is scheduled but some run an old revision (an OnDelete rollout is due).
- Running: every pod is scheduled on the current revision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self, TypedDict

from ant.jobs import schema
from ant.jobs.ending import Policy, Record
from ant.jobs.gang import engine_of
from ant.kube.codec import map_dict

if TYPE_CHECKING:  # `ant show` only: not on the path of a list
    from ant.jobs.template import PodTemplate

DEGRADED_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


_ANT_PREFIX = "ant.dev/"
# Locals for the hot loop in from_metadata (10,000 jobs a list).
_META_PREFIX = schema.META_PREFIX
_META_CUT = len(schema.META_PREFIX)


class JobStatus(StrEnum):
    PENDING = "Pending"
    PARTIAL = "Partial"
    RUNNING = "Running"
    UPDATING = "Updating"
    DEGRADED = "Degraded"
    TERMINATING = "Terminating"
    INCOMPLETE = "Incomplete"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    QUEUED = "Queued"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


@dataclass(frozen=True)
class Replica:
    index: int
    pod: str
    uid: str
    phase: str
    ready: bool
    scheduled: bool
    node: str
    restarts: int
    revision: str
    created_at: datetime | None
    reason: str = ""
    message: str = ""
    degraded: bool = False
    terminating: bool = False
    images: Mapping[str, str] = field(default_factory=dict)  # container -> image it runs
    exit_code: int | None = None  # the main container's last exit, if it exited


@dataclass(frozen=True)
class Job:
    name: str
    namespace: str
    user: str
    user_full: str
    status: JobStatus
    replicas: int
    ready: int
    pending: int
    updated: int
    priority: str
    created_at: datetime | None
    labels: Mapping[str, str]
    meta: Mapping[str, str]
    description: str
    update_revision: str
    current_revision: str
    preemptions: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict, repr=False)
    pods: tuple[Replica, ...] = ()
    uid: str = ""
    resource_version: str = ""
    sweep: str = ""
    # What new pods get (the StatefulSet's pod template); only ``job_from(template=True)``.
    template: PodTemplate | None = field(default=None, repr=False)
    policy: Policy = field(default_factory=Policy)
    record: Record = field(default_factory=Record)
    cluster: str = ""  # the kubeconfig context it was read through, when several were asked
    gang: str = ""  # the engine that admits it whole: "PodGroup", "Kueue", or "" (none)

    @property
    def nodes(self) -> int:
        return len({p.node for p in self.pods if p.node})

    @property
    def last_preempted_at(self) -> datetime | None:
        """When the last counted preemption happened (``ant.dev/last-preempted-at``)."""
        return parse_time(self.annotations.get(schema.LAST_PREEMPTED_AT, ""))

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Self:
        """A job from a value for every field, ``fields`` kept as its own, without
        ``__init__``: a frozen dataclass's sets each field through ``object.__setattr__``,
        4 µs a job, most of what a list of thousands of jobs cost to build."""
        job = object.__new__(cls)
        object.__setattr__(job, "__dict__", fields)
        return job

    def in_cluster(self, cluster: str) -> Self:
        """This job, tagged with the cluster it was read from (``dataclasses.replace``
        would run ``__init__`` again)."""
        return self.from_fields({**self.__dict__, "cluster": cluster})


def job_from(sts: Any, pods: Iterable[Any], *, template: bool = False) -> Job:
    """``template``: also describe the pod template (``ant show``; lists need not)."""
    return job_of(summary(sts, template=template), [replica(p) for p in pods])


@dataclass(frozen=True, slots=True)
class Summary:
    """What a StatefulSet alone says of its job: all a list keeps of it, the message
    itself let go (``fields`` are ``Job``'s keyword arguments taken from it)."""

    fields: dict[str, Any]
    want: int  # spec.replicas
    terminating: bool
    incomplete: bool
    settled: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.fields["namespace"], self.fields["name"]


def summary(sts: Any, *, template: bool = False) -> Summary:
    meta, status, want = sts.metadata, sts.status, sts.spec.replicas
    # Each map is copied out of the message once; the Job keeps these very dicts.
    labels, annotations = map_dict(meta.labels), map_dict(meta.annotations)
    metadata = from_metadata(labels, annotations)
    record = metadata["record"]
    return Summary(
        fields={
            "name": meta.name,
            "namespace": meta.namespace,
            "replicas": want if record.replicas is None else record.replicas,
            "created_at": _time(meta.creationTimestamp),
            "update_revision": status.updateRevision,
            "current_revision": status.currentRevision,
            "preemptions": _int(annotations.get(schema.PREEMPTIONS)),
            "uid": meta.uid,
            "resource_version": meta.resourceVersion,
            "template": _describe(sts.spec.template.spec) if template else None,
            "gang": engine.value if (engine := engine_of(sts)) else "",
            **metadata,
        },
        want=want,
        terminating=meta.HasField("deletionTimestamp"),
        incomplete=schema.SERVICE_PENDING in annotations,
        settled=settled(sts),
    )


def job_of(head: Summary, replicas: Sequence[Replica]) -> Job:
    """The job from its StatefulSet's summary and its pods' replicas (any order)."""
    fields, want = head.fields, head.want
    ordered = tuple(sorted(replicas, key=_index)) if len(replicas) > 1 else tuple(replicas)
    live = [r for r in ordered if not r.terminating]
    scheduled = sum(1 for r in live if r.scheduled)
    updated = sum(1 for r in live if r.revision == fields["update_revision"])
    replaced = fields["record"].replaced_pods
    status = _status(
        terminating=head.terminating,
        incomplete=head.incomplete,
        phase=fields["record"].phase,
        restarting=bool(replaced) and any(r.uid in replaced for r in ordered),
        gang=bool(fields["gang"]),
        degraded=any(r.degraded for r in live),
        scheduled=scheduled,
        want=want,
        updated=updated,
    )
    return Job.from_fields(
        {
            **fields,
            "status": status,
            "ready": sum(1 for r in live if r.ready),
            "pending": max(0, want - scheduled),
            "updated": updated,
            "pods": ordered,
            "cluster": "",
        }
    )


def _index(r: Replica) -> int:
    return r.index


class JobMetadata(TypedDict):
    """The fields of a ``Job`` that its StatefulSet's labels and annotations alone give."""

    user: str
    user_full: str
    priority: str
    labels: Mapping[str, str]
    meta: Mapping[str, str]
    description: str
    annotations: Mapping[str, str]
    sweep: str
    policy: Policy
    record: Record


def from_metadata(labels: Mapping[str, str], annotations: Mapping[str, str]) -> JobMetadata:
    """What a job's labels and annotations say: shared by ``job_from`` and the cache's rows.

    ``annotations`` is kept as given: callers pass a dict of their own."""
    return {
        "user": labels.get(schema.CREATED_BY, ""),
        "user_full": annotations.get(schema.CREATED_BY_FULL, ""),
        "priority": labels.get(schema.PRIORITY, ""),
        "labels": {k: v for k, v in labels.items() if not k.startswith(_ANT_PREFIX)},
        "meta": {k[_META_CUT:]: v for k, v in annotations.items() if k.startswith(_META_PREFIX)},
        "description": annotations.get(schema.DESCRIPTION, ""),
        "annotations": annotations,
        "sweep": labels.get(schema.SWEEP, ""),
        "policy": Policy.from_annotations(annotations),
        "record": Record.from_metadata(labels, annotations),
    }


def settled(sts: Any) -> bool:
    """Whether a StatefulSet's own status tells all a job's summary needs, no pods read:
    the controller has seen the current spec, and exactly the wanted pods exist, all
    Ready (so scheduled, not failing) and on the update revision, none being deleted.
    Its counts are the controller's, as of its last sync: milliseconds behind the pods."""
    meta, status, want = sts.metadata, sts.status, sts.spec.replicas
    return (
        not meta.HasField("deletionTimestamp")
        and schema.SERVICE_PENDING not in meta.annotations
        and status.observedGeneration >= meta.generation
        and status.replicas == status.readyReplicas == status.updatedReplicas == want
    )


def job_from_status(sts: Any) -> Job:
    """``running_job`` straight from a ``settled`` StatefulSet."""
    return running_job(summary(sts))


def running_job(head: Summary) -> Job:
    """A ``settled`` StatefulSet's job from its status: Running, every replica Ready and
    updated, nothing pending; its pods (and so ``nodes``) unknown."""
    job = job_of(head, ())
    if job.status.finished:  # scaled to 0 by the controller: the label says it all
        return job
    want = head.want
    running = {"status": JobStatus.RUNNING, "ready": want, "pending": 0, "updated": want}
    return job.from_fields(vars(job) | running)


def jobs_from(statefulsets: Iterable[Any], pods: Iterable[Any]) -> list[Job]:
    """Join one list of StatefulSets with one list of pods, in memory."""
    by_job = replicas_by_job(pods)
    return [job_of(head, by_job.get(head.key, ())) for head in map(summary, statefulsets)]


def replicas_by_job(
    pods: Iterable[Any], keep: Callable[[Any], object] = bool, kept: list[Any] | None = None
) -> dict[tuple[str, str], list[Replica]]:
    """Each job's replicas, by (namespace, job), from pods in any order (each pod read
    once, then let go). Pods for which ``keep`` is truthy are also appended to ``kept``."""
    by_job: dict[tuple[str, str], list[Replica]] = defaultdict(list)
    for pod in pods:
        meta = pod.metadata
        job = meta.labels.get(schema.JOB)
        if job:
            by_job[(meta.namespace, job)].append(replica(pod))
        if kept is not None and keep(pod):
            kept.append(pod)
    return by_job


def _status(
    *,
    terminating: bool,
    incomplete: bool,
    phase: str,
    restarting: bool,
    gang: bool,
    degraded: bool,
    scheduled: int,
    want: int,
    updated: int,
) -> JobStatus:
    if terminating:
        return JobStatus.TERMINATING
    if incomplete:
        return JobStatus.INCOMPLETE
    if phase:
        return JobStatus(phase)
    if restarting:
        return JobStatus.RESTARTING
    if degraded:
        return JobStatus.DEGRADED
    if gang and want and scheduled == 0:
        return JobStatus.QUEUED
    if want and scheduled == 0:
        return JobStatus.PENDING
    if scheduled < want:
        return JobStatus.PARTIAL
    if updated < want:
        return JobStatus.UPDATING
    return JobStatus.RUNNING


def replica(pod: Any) -> Replica:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    conditions = {c.type: c for c in status.conditions}
    scheduled_cond = conditions.get("PodScheduled")
    ready_cond = conditions.get("Ready")
    reason, message, degraded = _reason(pod, scheduled_cond)
    return Replica(
        index=_int(meta.labels.get(schema.POD_INDEX), default=_ordinal(meta.name)),
        pod=meta.name,
        uid=meta.uid,
        phase=status.phase or "Pending",
        ready=ready_cond is not None and ready_cond.status == "True",
        scheduled=bool(spec.nodeName),
        node=spec.nodeName,
        restarts=sum(cs.restartCount for cs in status.containerStatuses),
        revision=meta.labels.get(schema.REVISION_HASH, ""),
        created_at=_time(meta.creationTimestamp),
        reason=reason,
        message=message,
        degraded=degraded,
        terminating=meta.HasField("deletionTimestamp"),
        images={c.name: c.image for c in spec.containers},
        exit_code=_exit_code(status),
    )


def _exit_code(status: Any) -> int | None:
    for cs in status.containerStatuses:
        for state in (cs.state.terminated, cs.lastState.terminated):
            if state.finishedAt.seconds or state.reason or state.exitCode:
                return int(state.exitCode)
    return None


def _reason(pod: Any, scheduled_cond: Any) -> tuple[str, str, bool]:
    """Why a pod is not simply running: (reason, message, degraded)."""
    status = pod.status
    if status.phase == "Failed":
        return status.reason or "Failed", status.message, True
    for cs in status.containerStatuses:
        waiting = cs.state.waiting
        if waiting.reason:
            return waiting.reason, waiting.message, waiting.reason in DEGRADED_REASONS
        if cs.state.terminated.reason:
            return cs.state.terminated.reason, cs.state.terminated.message, False
    if scheduled_cond is not None and scheduled_cond.status == "False":
        return scheduled_cond.reason, scheduled_cond.message, False
    return "", "", False


def _time(t: Any) -> datetime | None:
    return datetime.fromtimestamp(t.seconds, UTC) if t.seconds else None


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time as ant writes it (``Z``, optional fraction); ``None`` if unreadable."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _ordinal(pod_name: str) -> int:
    return _int(pod_name.rpartition("-")[2], default=-1)


def _describe(pod_spec: Any) -> PodTemplate:
    from ant.jobs.template import describe

    return describe(pod_spec)
