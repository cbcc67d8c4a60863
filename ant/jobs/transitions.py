"""The controller's decisions: from a job as it is now, the one next step (pure, no I/O).

``decide`` is level-triggered: it looks only at the StatefulSet, its pods and the
phases of the jobs it waits for, never at what happened before, so running it again
after a crash, a missed event or a failover gives the same answer. A step that writes
the StatefulSet carries its resourceVersion as a precondition (``job_patch``): two
controllers, or one with a stale cache, cannot both make the same transition.

The rules (docs/controller.md):

- A replica has *finished* when its main container exited 0 (the container's
  ``restartPolicy: OnFailure`` keeps it from starting again where the cluster has
  KEP-5307; elsewhere the exit is read from ``lastState``). Finished replicas are
  recorded in ``ant.dev/exits`` as they are seen, because the StatefulSet controller
  replaces a Succeeded pod at once. All finished: ``Succeeded``, scaled to 0.
- A replica has *failed* when its main container exited non-zero (now or before an
  in-place restart), or its pod failed, was evicted or lost its node. A preemption is
  not a failure. Per ``ant.dev/on-failure``: restart the whole job (all pods deleted,
  ``ant.dev/restarts`` + 1, their uids in ``ant.dev/replaced-pods`` so that their
  signals are never counted twice), restart the replica, or fail; once
  ``ant.dev/max-restarts`` restarts are spent, the next failure is ``Failed``.
- ``--after``: the pods are gated until every named job ``Succeeded``; one that failed
  or is gone fails this one.
- A finished job is deleted ``ant.dev/ttl`` seconds after ``ant.dev/finished-at``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ant.jobs import schema
from ant.jobs.ending import (
    Exit,
    Policy,
    Record,
    Restart,
    exits_value,
    now_text,
    replaced_pods_value,
    restart_log_value,
)
from ant.jobs.manifest import CONTAINER
from ant.jobs.model import parse_time
from ant.kube.codec import map_dict

# DisruptionTarget reasons that are a preemption, not a failure: k8s.io/api core/v1
# PodReasonPreemptionByScheduler (and PreemptionByKubeScheduler, its older name).
PREEMPTION_REASONS = frozenset({"PreemptionByScheduler", "PreemptionByKubeScheduler"})

# A job's phase as its dependants see it: "" active, Succeeded, Failed; None: no such job.
PhaseOf = Callable[[str], str | None]


@dataclass(frozen=True)
class Signal:
    """What one pod says about its replica."""

    replica: int
    pod: str
    uid: str
    failed: bool  # else finished (exit 0)
    exit_code: int | None
    reason: str
    at: str


@dataclass(frozen=True)
class PodRef:
    name: str
    uid: str
    resource_version: str = ""
    gates: tuple[str, ...] = ()  # the scheduling gates to keep (ungating)


@dataclass(frozen=True)
class Step:
    """One transition: patch the job (labels, annotations, replicas), then act on pods."""

    kind: str  # for logs and metrics: succeeded, failed, restart-job, ...
    reason: str = ""
    labels: Mapping[str, str | None] = field(default_factory=dict)
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    replicas: int | None = None
    delete_pods: tuple[PodRef, ...] = ()
    ungate_pods: tuple[PodRef, ...] = ()
    delete_job: bool = False

    @property
    def patches_job(self) -> bool:
        return bool(self.labels or self.annotations) or self.replicas is not None


@dataclass(frozen=True)
class Decision:
    step: Step | None  # None: nothing to do now
    recheck_after: float | None = None  # seconds: look again then (a TTL to expire)


def job_patch(step: Step, resource_version: str) -> dict[str, Any]:
    """The merge patch for the StatefulSet, conditional on ``resource_version``."""
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if step.labels:
        meta["labels"] = dict(step.labels)
    if step.annotations:
        meta["annotations"] = dict(step.annotations)
    patch: dict[str, Any] = {"metadata": meta}
    if step.replicas is not None:
        patch["spec"] = {"replicas": step.replicas}
    return patch


def ungate_patch(pod: PodRef) -> dict[str, Any]:
    """Remove ant's gate from a pod (gates can only be removed), conditionally."""
    return {
        "metadata": {"resourceVersion": pod.resource_version},
        "spec": {"schedulingGates": [{"name": g} for g in pod.gates] or None},
    }


def decide(
    sts: Any,
    pods: Iterable[Any],
    phase_of: PhaseOf,
    now: datetime,
    seen: Iterable[Signal] = (),
) -> Decision:
    """The next step. ``seen``: signals the caller noted from pods as they changed, which
    the pods may no longer show (a Succeeded pod is replaced by the StatefulSet at once)."""
    pods = list(pods)
    meta = sts.metadata
    if meta.HasField("deletionTimestamp"):
        return Decision(None)
    labels, annotations = map_dict(meta.labels), map_dict(meta.annotations)
    policy = Policy.from_annotations(annotations)
    record = Record.from_metadata(labels, annotations)
    if record.finished:
        return _expiry(record, policy, now)
    live = [p for p in pods if not p.metadata.HasField("deletionTimestamp")]
    stale = [p for p in live if p.metadata.uid in record.replaced_pods]
    if stale:
        return Decision(
            Step(
                "delete-replaced",
                f"removing {len(stale)} pod(s) of the previous attempt",
                delete_pods=tuple(PodRef(p.metadata.name, p.metadata.uid) for p in stale),
            )
        )
    want = sts.spec.replicas
    if policy.after and not record.released_at:
        return Decision(_dependencies(policy, want, record, live, phase_of, now))
    gated = [p for p in live if schema.AFTER_GATE in (g.name for g in p.spec.schedulingGates)]
    if gated:
        return Decision(Step("ungate", "dependencies met", ungate_pods=_ungated(gated)))
    now_seen = [pod_signal(p) for p in pods]
    signals = [
        s
        for s in (*(s for s in now_seen if s is not None), *seen)
        if s.uid not in record.replaced_pods
        and 0 <= s.replica < want
        and s.replica not in record.exits
    ]
    failures = sorted((s for s in signals if s.failed), key=lambda s: s.replica)
    if failures:
        return Decision(_on_failure(failures[0], policy, record, want, live, now))
    finished = {s.replica: Exit(0, s.at) for s in signals}
    if not finished:
        return Decision(None)
    exits = {**record.exits, **finished}
    if want and len(exits) >= want:
        return Decision(_end("Succeeded", want, exits, now, reason="every replica exited 0"))
    return Decision(
        Step(
            "record-exits",
            f"replica(s) {', '.join(map(str, sorted(finished)))} finished",
            annotations={schema.EXITS: exits_value(exits)},
        )
    )


def pod_signal(pod: Any) -> Signal | None:
    """Finished, failed, or nothing to say (running, pending, preempted, deleted by hand).

    A pod being deleted says only whether it was disrupted (evicted, lost its node): its
    containers' exits are the deletion's doing (SIGTERM), whoever asked for it (a restart,
    a rollout, the StatefulSet replacing a finished pod), so they are not the workload's.
    """
    meta, status = pod.metadata, pod.status
    replica = _replica(pod)
    disruption = next(
        (c for c in status.conditions if c.type == "DisruptionTarget" and c.status == "True"),
        None,
    )
    if disruption is not None and disruption.reason in PREEMPTION_REASONS:
        return None
    if meta.HasField("deletionTimestamp"):
        return None if disruption is None else _disrupted(pod, replica, disruption)
    for cs in status.containerStatuses:
        if cs.name != CONTAINER:
            continue
        # Now, or before an in-place restart (lastState): a failure restarted by
        # OnFailure, or an exit 0 restarted by a cluster without container restart rules.
        for state in (cs.state.terminated, cs.lastState.terminated):
            if not state.finishedAt.seconds and not state.reason and not state.exitCode:
                continue  # no such termination
            at = _time_text(state.finishedAt)
            if state.exitCode == 0:
                return Signal(replica, meta.name, meta.uid, False, 0, "exited 0", at)
            return Signal(
                replica,
                meta.name,
                meta.uid,
                True,
                state.exitCode,
                f"replica {replica} exited with code {state.exitCode}",
                at,
            )
    if disruption is not None:
        return _disrupted(pod, replica, disruption)
    if status.phase == "Failed":
        why = status.reason or "pod failed"
        return Signal(replica, meta.name, meta.uid, True, None, f"replica {replica}: {why}", "")
    if status.phase == "Succeeded":
        return Signal(replica, meta.name, meta.uid, False, 0, "exited 0", "")
    return None


def _disrupted(pod: Any, replica: int, disruption: Any) -> Signal:
    """Evicted, or lost its node: a failure of the replica."""
    why = disruption.reason or "disrupted"
    at = _time_text(disruption.lastTransitionTime)
    return Signal(
        replica, pod.metadata.name, pod.metadata.uid, True, None, f"replica {replica}: {why}", at
    )


# ---- the steps ------------------------------------------------------------------------


def _expiry(record: Record, policy: Policy, now: datetime) -> Decision:
    finished = parse_time(record.finished_at)
    if finished is None:
        return Decision(None)
    left = (finished - now).total_seconds() + policy.ttl_seconds
    if left > 0:
        return Decision(None, recheck_after=left)
    return Decision(
        Step(
            "expire",
            f"{record.phase.lower()} at {record.finished_at}, kept {policy.ttl_seconds}s (ttl)",
            delete_job=True,
        )
    )


def _dependencies(
    policy: Policy, want: int, record: Record, live: list[Any], phase_of: PhaseOf, now: datetime
) -> Step | None:
    waiting = False
    for name in policy.after:
        phase = phase_of(name)
        if phase is None:
            return _end("Failed", want, record.exits, now, reason=f"dependency {name} is gone")
        if phase == "Failed":
            return _end("Failed", want, record.exits, now, reason=f"dependency {name} failed")
        waiting = waiting or phase != "Succeeded"
    if waiting:
        return None
    gated = [p for p in live if schema.AFTER_GATE in (g.name for g in p.spec.schedulingGates)]
    return Step(
        "release",
        f"{', '.join(policy.after)} succeeded",
        annotations={schema.RELEASED_AT: now_text(now)},
        ungate_pods=_ungated(gated),
    )


def _ungated(pods: list[Any]) -> tuple[PodRef, ...]:
    return tuple(
        PodRef(
            p.metadata.name,
            p.metadata.uid,
            p.metadata.resourceVersion,
            tuple(g.name for g in p.spec.schedulingGates if g.name != schema.AFTER_GATE),
        )
        for p in pods
    )


def _on_failure(
    failure: Signal, policy: Policy, record: Record, want: int, live: list[Any], now: datetime
) -> Step:
    exits = dict(record.exits)
    if failure.exit_code is not None:
        exits[failure.replica] = Exit(failure.exit_code, failure.at or now_text(now))
    if policy.on_failure == "fail":
        return _end("Failed", want, exits, now, reason=failure.reason, replica=failure.replica)
    if record.restarts >= policy.max_restarts:
        reason = (
            f"{failure.reason} (restarts exhausted: {record.restarts} of {policy.max_restarts})"
        )
        return _end("Failed", want, exits, now, reason=reason, replica=failure.replica)
    whole = policy.on_failure == "restart-job"
    victims = live if whole else [p for p in live if p.metadata.uid == failure.uid]
    restart = Restart(now_text(now), failure.reason, failure.replica, failure.exit_code)
    annotations: dict[str, str | None] = {
        schema.RESTARTS: str(record.restarts + 1),
        schema.RESTART_LOG: restart_log_value([*record.restart_log, restart]),
        schema.REPLACED_PODS: replaced_pods_value([p.metadata.uid for p in victims]),
    }
    if whole:
        annotations[schema.EXITS] = None  # a new attempt: every replica runs again
    n = record.restarts + 1
    return Step(
        "restart-job" if whole else "restart-replica",
        f"{failure.reason}; restart {n} of {policy.max_restarts}",
        annotations=annotations,
        delete_pods=tuple(PodRef(p.metadata.name, p.metadata.uid) for p in victims),
    )


def _end(
    phase: str,
    want: int,
    exits: Mapping[int, Exit],
    now: datetime,
    *,
    reason: str,
    replica: int | None = None,
) -> Step:
    annotations: dict[str, str | None] = {
        schema.FINISHED_AT: now_text(now),
        schema.REPLICAS: str(want),
        schema.EXITS: exits_value(exits),
    }
    if phase == "Failed":
        annotations[schema.FAILURE] = reason
        if replica is not None:
            annotations[schema.FAILED_REPLICA] = str(replica)
    return Step(
        phase.lower(),
        reason,
        labels={schema.PHASE: phase},
        annotations=annotations,
        replicas=0,  # the accelerators go back to the queue; the objects stay as the record
    )


def _replica(pod: Any) -> int:
    index = pod.metadata.labels.get(schema.POD_INDEX) or pod.metadata.name.rpartition("-")[2]
    return int(index) if index.isdigit() else -1


def _time_text(t: Any) -> str:
    return now_text(datetime.fromtimestamp(t.seconds, tz=UTC)) if t.seconds else ""
