"""Gangs: a job's replicas are admitted together or not at all, by one of two engines.

- **PodGroup** (kube-scheduler's own gang scheduling, ``scheduling.k8s.io/v1beta1``,
  KEP-4671): one PodGroup per job, named like the job and owned by its StatefulSet,
  ``schedulingPolicy.gang.minCount`` = replicas (or ``--min-replicas``),
  ``disruptionMode: All`` (preempted whole), the job's PriorityClass; the pod template
  points at it with ``spec.schedulingGroup.podGroupName``. The scheduler binds none of
  the pods until ``minCount`` of them fit at once.
- **Kueue** (``--queue NAME``): the StatefulSet is labelled with the LocalQueue and the
  WorkloadPriorityClass of the job's priority; Kueue gates every pod until the whole
  workload fits the ClusterQueue's quota.

A job of one replica needs no gang; ``--no-gang`` opts out; a cluster with neither
engine runs jobs as before (the caller says so once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ant.errors import Forbidden, NotFound, UsageError, ValidationError
from ant.jobs import schema
from ant.jobs.priorities import LEVELS
from ant.kube import resources as r
from ant.kube.client import Client

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"


class Engine(StrEnum):
    PODGROUP = "PodGroup"
    KUEUE = "Kueue"


@dataclass(frozen=True)
class Gang:
    """How a job is admitted whole: the engine, and what it needs."""

    engine: Engine
    min_count: int = 0  # PodGroup: pods that must fit together
    queue: str = ""  # Kueue: the LocalQueue


@dataclass(frozen=True)
class GangRequest:
    """What the user asked for (flags, env): resolved against the cluster by ``choose``."""

    enabled: bool = True  # --no-gang: False
    min_replicas: int | None = None
    queue: str = ""


def validate(request: GangRequest, replicas: int) -> None:
    """The rules that need no cluster."""
    if request.queue and not request.enabled:
        raise UsageError(
            "--no-gang and --queue contradict each other: Kueue admits a job whole",
            hint="drop one of them",
        )
    if request.queue:
        schema.validate_label(QUEUE_LABEL, request.queue)
    if request.min_replicas is not None:
        if not request.enabled:
            raise UsageError("--min-replicas needs a gang; drop --no-gang")
        if request.queue:
            raise UsageError("--min-replicas applies to PodGroup gangs; Kueue admits every replica")
        if not 1 <= request.min_replicas <= replicas:
            raise ValidationError(
                "--min-replicas", f"{request.min_replicas} is not between 1 and {replicas}"
            )


def choose(
    request: GangRequest, replicas: int, serves_podgroups: Callable[[], bool]
) -> Gang | None:
    """The engine for a job, or None (no gang: one replica, ``--no-gang``, or no engine).

    ``serves_podgroups`` is asked only when the answer matters.
    """
    if request.queue:
        return Gang(Engine.KUEUE, queue=request.queue)
    if not request.enabled or replicas < 2:
        return None
    if not serves_podgroups():
        return None
    return Gang(Engine.PODGROUP, min_count=request.min_replicas or replicas)


def wants_gang(request: GangRequest, replicas: int) -> bool:
    """Whether the user expects a gang (to say so when the cluster cannot give one)."""
    return bool(request.queue) or (request.enabled and replicas > 1)


def apply(gang: Gang, statefulset: dict[str, Any], priority: str) -> None:
    """Point the StatefulSet (a Kubernetes-JSON dict) at its engine, in place."""
    template = statefulset["spec"]["template"]
    if gang.engine is Engine.PODGROUP:
        name = statefulset["metadata"]["name"]
        template["spec"] = {**template["spec"], "schedulingGroup": {"podGroupName": name}}
        return
    labels = {QUEUE_LABEL: gang.queue, KUEUE_PRIORITY_LABEL: schema.priority_class(priority)}
    # New dicts: the StatefulSet, its template and the Service may share one labels dict.
    for meta in (statefulset["metadata"], template.setdefault("metadata", {})):
        meta["labels"] = {**meta.get("labels", {}), **labels}


def podgroup(gang: Gang, statefulset: dict[str, Any], priority: str) -> dict[str, Any]:
    """The job's PodGroup (Kubernetes JSON); its ownerReference is added at creation."""
    meta = statefulset["metadata"]
    spec: dict[str, Any] = {
        "schedulingPolicy": {"gang": {"minCount": gang.min_count}},
        "disruptionMode": {"all": {}},
        "priorityClassName": schema.priority_class(priority),
    }
    # The API server defaults preemptionPolicy to PreemptLowerPriority before priority
    # admission compares it with the class's: a class that says Never must be matched.
    policy = next(level.preemption_policy for level in LEVELS if level.priority == priority)
    if policy != DEFAULT_PREEMPTION_POLICY:
        spec["preemptionPolicy"] = policy
    return {
        "apiVersion": "scheduling.k8s.io/v1beta1",
        "kind": "PodGroup",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {k: v for k, v in meta["labels"].items() if k.startswith("ant.dev/")},
        },
        "spec": spec,
    }


def engine_of(statefulset: Any) -> Engine | None:
    """Which engine a job's StatefulSet (protobuf) was submitted to."""
    if statefulset.metadata.labels.get(QUEUE_LABEL):
        return Engine.KUEUE
    if statefulset.spec.template.spec.schedulingGroup.podGroupName:
        return Engine.PODGROUP
    return None


def check_queue(client: Client, namespace: str, queue: str, priority: str) -> None:
    """The LocalQueue exists in the namespace, and the WorkloadPriorityClass of the
    job's priority exists (a submit with either missing would wait forever)."""
    from concurrent.futures import ThreadPoolExecutor

    wpc = schema.priority_class(priority)
    with ThreadPoolExecutor(max_workers=2) as pool:
        local = pool.submit(client.get, r.LOCAL_QUEUES, queue, namespace)
        klass = pool.submit(client.get, r.WORKLOAD_PRIORITY_CLASSES, wpc)
        for future, missing in (
            (
                local,
                UsageError(
                    f"Kueue queue {queue} does not exist in namespace {namespace}",
                    hint="'kubectl get localqueues' lists them; an admin runs "
                    "'ant admin install-queues'",
                ),
            ),
            (
                klass,
                UsageError(
                    f"Kueue WorkloadPriorityClass {wpc} is not installed in this cluster",
                    hint="an admin runs 'ant admin install-queues'",
                ),
            ),
        ):
            try:
                future.result()
            except NotFound as e:
                raise missing from e
            except Forbidden:
                pass  # cannot look: Kueue will say in the job's status
