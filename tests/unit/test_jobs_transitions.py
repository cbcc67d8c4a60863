"""ant.jobs.transitions: the controller's next step for a job, from its objects alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ant.jobs import schema
from ant.jobs.documents import job_item
from ant.jobs.model import JobStatus, job_from
from ant.jobs.transitions import Decision, decide, job_patch, ungate_patch
from ant.kube.convert import to_message
from ant.kube.proto import apps_v1_pb2, core_v1_pb2

NOW = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)
EXITED = "2026-12-01T14:59:58Z"


def statefulset(want: int = 4, *, labels: dict[str, str] | None = None, **annotations: str) -> Any:
    return to_message(
        {
            "metadata": {
                "name": "bert",
                "namespace": "research",
                "uid": "sts-uid",
                "resourceVersion": "100",
                "labels": {"ant.dev/managed-by": "ant", "ant.dev/job": "bert", **(labels or {})},
                "annotations": {
                    f"ant.dev/{k.replace('_', '-')}": v for k, v in annotations.items()
                },
            },
            "spec": {"replicas": want},
        },
        apps_v1_pb2.StatefulSet,
    )


def pod(
    index: int,
    *,
    uid: str | None = None,
    exit_code: int | None = None,
    last_exit: int | None = None,
    phase: str = "Running",
    disruption: str | None = None,
    gated: bool = False,
    deleting: bool = False,
) -> Any:
    container: dict[str, Any] = {"name": "main", "state": {"running": {}}}
    if exit_code is not None:
        container["state"] = {
            "terminated": {"exitCode": exit_code, "reason": "Completed", "finishedAt": EXITED}
        }
    if last_exit is not None:
        container["lastState"] = {
            "terminated": {"exitCode": last_exit, "reason": "Error", "finishedAt": EXITED}
        }
    conditions = []
    if disruption:
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": disruption})
    metadata: dict[str, Any] = {
        "name": f"bert-{index}",
        "namespace": "research",
        "uid": uid or f"pod-{index}",
        "resourceVersion": f"{50 + index}",
        "labels": {"ant.dev/job": "bert", "apps.kubernetes.io/pod-index": str(index)},
    }
    if deleting:
        metadata["deletionTimestamp"] = EXITED
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "i"}]}
    if gated:
        spec["schedulingGates"] = [{"name": "ant.dev/after"}, {"name": "other"}]
    return to_message(
        {
            "metadata": metadata,
            "spec": spec,
            "status": {"phase": phase, "containerStatuses": [container], "conditions": conditions},
        },
        core_v1_pb2.Pod,
    )


def running(n: int = 4) -> list[Any]:
    return [pod(i) for i in range(n)]


def no_dependencies(name: str) -> str | None:
    raise AssertionError(f"asked for {name}")


def step_of(sts: Any, pods: list[Any], phase_of: Any = no_dependencies, seen: Any = ()) -> Any:
    decision = decide(sts, pods, phase_of, NOW, seen)
    assert decision.step is not None
    return decision.step


def test_a_running_job_needs_nothing() -> None:
    assert decide(statefulset(), running(), no_dependencies, NOW) == Decision(None)


def test_finished_replicas_are_recorded_as_they_are_seen() -> None:
    pods = [pod(0, exit_code=0), pod(1, phase="Succeeded"), pod(2), pod(3)]
    step = step_of(statefulset(), pods)
    assert step.kind == "record-exits"
    assert json.loads(step.annotations[schema.EXITS]) == {
        "0": {"exitCode": 0, "at": EXITED},
        "1": {"exitCode": 0, "at": ""},
    }
    assert not step.labels
    assert step.replicas is None


def test_the_last_replica_to_finish_makes_the_job_succeed_and_frees_its_capacity() -> None:
    recorded = json.dumps({str(i): {"exitCode": 0, "at": EXITED} for i in range(3)})
    # replica 0 was replaced by the StatefulSet after it finished: its new pod runs again
    pods = [pod(0, uid="again"), pod(1), pod(2), pod(3, exit_code=0)]
    step = step_of(statefulset(exits=recorded), pods)
    assert step.kind == "succeeded"
    assert step.labels == {schema.PHASE: "Succeeded"}
    assert step.replicas == 0
    assert step.annotations[schema.REPLICAS] == "4"
    assert step.annotations[schema.FINISHED_AT] == "2026-12-01T15:00:00Z"
    assert sorted(json.loads(step.annotations[schema.EXITS])) == ["0", "1", "2", "3"]
    patch = job_patch(step, "100")
    assert patch["metadata"]["resourceVersion"] == "100"  # optimistic concurrency
    assert patch["spec"] == {"replicas": 0}


def test_an_exit_0_restarted_by_a_cluster_without_restart_rules_still_counts() -> None:
    step = step_of(statefulset(1), [pod(0, last_exit=0)])
    assert step.kind == "succeeded"


def test_a_failure_restarts_the_whole_job_and_remembers_its_pods() -> None:
    pods = [pod(0), pod(1), pod(2, last_exit=3), pod(3, exit_code=0)]
    step = step_of(statefulset(max_restarts="3"), pods)
    assert step.kind == "restart-job"
    assert step.annotations[schema.RESTARTS] == "1"
    assert step.annotations[schema.EXITS] is None  # a new attempt
    assert json.loads(step.annotations[schema.REPLACED_PODS]) == [f"pod-{i}" for i in range(4)]
    (entry,) = json.loads(step.annotations[schema.RESTART_LOG])
    assert entry == {
        "at": "2026-12-01T15:00:00Z",
        "reason": "replica 2 exited with code 3",
        "replica": 2,
        "exitCode": 3,
    }
    assert [p.name for p in step.delete_pods] == [f"bert-{i}" for i in range(4)]
    assert all(p.uid for p in step.delete_pods)


def test_pods_of_the_previous_attempt_are_removed_and_never_counted_again() -> None:
    # a failover after the restart was recorded, before its pods were deleted
    sts = statefulset(restarts="1", replaced_pods=json.dumps(["pod-0", "pod-2"]))
    pods = [pod(0), pod(1, uid="new-1"), pod(2, last_exit=3), pod(3, uid="new-3")]
    step = step_of(sts, pods)
    assert step.kind == "delete-replaced"
    assert [p.uid for p in step.delete_pods] == ["pod-0", "pod-2"]
    assert not step.patches_job
    # once they are terminating, the old failure is not a new one
    pods = [pod(0, deleting=True), pod(1, uid="new-1"), pod(2, last_exit=3, deleting=True)]
    assert decide(sts, pods, no_dependencies, NOW) == Decision(None)


def test_after_max_restarts_the_job_fails_naming_the_replica() -> None:
    sts = statefulset(max_restarts="2", restarts="2")
    step = step_of(sts, [pod(0), pod(1, exit_code=3), pod(2), pod(3)])
    assert step.kind == "failed"
    assert step.labels == {schema.PHASE: "Failed"}
    assert step.replicas == 0
    assert step.annotations[schema.FAILED_REPLICA] == "1"
    assert step.annotations[schema.FAILURE] == (
        "replica 1 exited with code 3 (restarts exhausted: 2 of 2)"
    )
    assert json.loads(step.annotations[schema.EXITS])["1"]["exitCode"] == 3


def test_on_failure_fail_and_restart_replica() -> None:
    pods = [pod(0), pod(1, exit_code=7)]
    failed = step_of(statefulset(2, on_failure="fail"), pods)
    assert (failed.kind, failed.annotations[schema.FAILURE]) == (
        "failed",
        "replica 1 exited with code 7",
    )
    one = step_of(statefulset(2, on_failure="restart-replica"), pods)
    assert one.kind == "restart-replica"
    assert [p.name for p in one.delete_pods] == ["bert-1"]
    assert schema.EXITS not in one.annotations  # the others' exits still count


@pytest.mark.parametrize(
    ("disruption", "phase", "kind"),
    [
        ("PreemptionByScheduler", "Failed", None),  # a preemption is not a failure
        ("DeletionByTaintManager", "Running", "restart-job"),  # lost its node
        (None, "Failed", "restart-job"),  # evicted, say
    ],
)
def test_pod_level_failures(disruption: str | None, phase: str, kind: str | None) -> None:
    pods = [pod(0), pod(1, disruption=disruption, phase=phase)]
    decision = decide(statefulset(2), pods, no_dependencies, NOW)
    assert (decision.step.kind if decision.step else None) == kind


def test_after_waits_then_releases_the_gates() -> None:
    sts = statefulset(2, after="prep,tok")
    pods = [pod(0, gated=True), pod(1, gated=True)]
    phases = {"prep": "Succeeded", "tok": ""}
    assert decide(sts, pods, phases.get, NOW) == Decision(None)
    phases["tok"] = "Succeeded"
    step = step_of(sts, pods, phases.get)
    assert step.kind == "release"
    assert step.annotations == {schema.RELEASED_AT: "2026-12-01T15:00:00Z"}
    assert [p.gates for p in step.ungate_pods] == [("other",), ("other",)]
    assert ungate_patch(step.ungate_pods[0]) == {
        "metadata": {"resourceVersion": "50"},
        "spec": {"schedulingGates": [{"name": "other"}]},
    }
    # released: a pod created later (a restart) is ungated without asking again
    released = statefulset(2, after="prep,tok", released_at="2026-12-01T15:00:00Z")
    step = step_of(released, [pod(0), pod(1, gated=True)], no_dependencies)
    assert (step.kind, [p.name for p in step.ungate_pods]) == ("ungate", ["bert-1"])


@pytest.mark.parametrize(
    ("phase", "reason"), [("Failed", "dependency prep failed"), (None, "dependency prep is gone")]
)
def test_a_failed_or_missing_dependency_fails_the_job(phase: str | None, reason: str) -> None:
    step = step_of(statefulset(2, after="prep"), [pod(0, gated=True)], {"prep": phase}.get)
    assert (step.kind, step.annotations[schema.FAILURE], step.replicas) == ("failed", reason, 0)


def test_a_finished_job_is_kept_for_its_ttl_then_deleted() -> None:
    finished = (NOW - timedelta(seconds=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sts = statefulset(0, labels={schema.PHASE: "Succeeded"}, finished_at=finished, ttl="60")
    decision = decide(sts, [], no_dependencies, NOW)
    assert decision == Decision(None, recheck_after=10.0)
    later = decide(sts, [], no_dependencies, NOW + timedelta(seconds=10))
    assert later.step is not None
    assert later.step.delete_job


def test_the_model_shows_what_the_controller_recorded() -> None:
    restarting = statefulset(2, restarts="1", replaced_pods=json.dumps(["pod-0"]))
    job = job_from(restarting, [pod(0), pod(1, uid="new")])
    assert job.status is JobStatus.RESTARTING
    failed = statefulset(
        0,
        labels={schema.PHASE: "Failed"},
        replicas="4",
        failure="replica 1 exited with code 3",
        failed_replica="1",
        exits=json.dumps({"1": {"exitCode": 3, "at": EXITED}}),
    )
    job = job_from(failed, [])
    assert (job.status, job.replicas) == (JobStatus.FAILED, 4)
    doc = job_item(job)
    assert (doc["failure"], doc["failedReplica"]) == ("replica 1 exited with code 3", 1)
    assert doc["exits"] == [{"replica": 1, "exitCode": 3, "at": EXITED}]
    assert doc["status"] == "Failed"


def test_a_finished_job_read_from_its_status_alone_stays_finished() -> None:
    from ant.jobs.model import job_from_status, settled

    sts = statefulset(0, labels={schema.PHASE: "Succeeded"}, replicas="4")
    assert settled(sts)  # scaled to 0: nothing to read from pods
    job = job_from_status(sts)
    assert (job.status, job.replicas, job.ready) == (JobStatus.SUCCEEDED, 4, 0)


def test_a_pod_being_deleted_says_nothing_but_a_disruption() -> None:
    # ant restart, a rollout, the StatefulSet: SIGTERM's exit is the deletion's, not a failure
    deleted = [pod(0), pod(1, exit_code=143, phase="Failed", deleting=True)]
    assert decide(statefulset(2), deleted, no_dependencies, NOW) == Decision(None)
    graceful = [pod(0), pod(1, exit_code=0, phase="Succeeded", deleting=True)]
    assert decide(statefulset(2), graceful, no_dependencies, NOW) == Decision(None)
    evicted = [pod(0), pod(1, disruption="EvictionByEvictionAPI", deleting=True)]
    step = step_of(statefulset(2), evicted)
    assert (step.kind, step.annotations[schema.RESTART_LOG].count("EvictionByEvictionAPI")) == (
        "restart-job",
        1,
    )


def test_an_exit_seen_earlier_counts_though_its_pod_was_replaced() -> None:
    from ant.jobs.transitions import pod_signal

    finished = pod_signal(pod(1, exit_code=0, phase="Succeeded"))
    assert finished is not None
    # the StatefulSet replaced the Succeeded pod at once: the new one runs again
    step = step_of(statefulset(2), [pod(0, exit_code=0), pod(1, uid="again")], seen=[finished])
    assert step.kind == "succeeded"
    # but never a signal of a pod the last restart replaced
    replaced = statefulset(2, replaced_pods=json.dumps(["pod-1"]))
    assert decide(replaced, [pod(0), pod(1, uid="new")], no_dependencies, NOW, [finished]) == (
        Decision(None)
    )
