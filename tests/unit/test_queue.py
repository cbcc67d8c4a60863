"""ant.jobs.queue: order, requests, capacity and preemption tallies, from protobuf as read."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from ant.cli import views
from ant.cli.environment import Environment
from ant.cli.terminal import Terminal
from ant.jobs import documents
from ant.jobs import queue as q
from ant.jobs.capacity import UNKNOWN_WHY, cluster_usage
from ant.jobs.model import jobs_from
from ant.kube.convert import to_message
from ant.kube.proto import apps_v1_pb2, core_v1_pb2, scheduling_v1_pb2

NOW = datetime(2026, 11, 24, 16, 0, 0, tzinfo=UTC)
UNSCHEDULABLE = (
    "0/8 nodes are available: 8 Insufficient google.com/tpu. no new claims to deallocate, "
    "preemption: not eligible due to preemptionPolicy=Never."
)
VALUES = {"high": 100_000, "normal": 10_000, "opportunistic": 1_000}


def ts(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def statefulset(
    name: str,
    *,
    priority: str = "opportunistic",
    replicas: int = 1,
    submitted: float = 10,
    user: str = "alice",
    tpus: int = 4,
    namespace: str = "research",
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
) -> Any:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "resourceVersion": "7",
        "creationTimestamp": ts(submitted),
        "labels": {
            "ant.dev/managed-by": "ant",
            "ant.dev/job": name,
            "ant.dev/created-by": user,
            "ant.dev/priority": priority,
        },
        "annotations": {"ant.dev/submitted-at": ts(submitted), **(annotations or {})},
    }
    if deleting:
        metadata["deletionTimestamp"] = ts(0)
    return to_message(
        {
            "metadata": metadata,
            "spec": {
                "replicas": replicas,
                "template": {
                    "spec": {
                        "priorityClassName": f"ant-{priority}",
                        "containers": [
                            {
                                "name": "main",
                                "image": "x",
                                "resources": {
                                    "requests": {"google.com/tpu": str(tpus), "cpu": "8"}
                                },
                            }
                        ],
                    }
                },
            },
        },
        apps_v1_pb2.StatefulSet,
    )


def pod(
    job: str,
    index: int,
    *,
    node: str = "",
    priority: str | None = "opportunistic",
    created: float = 5,
    tpus: int = 4,
    namespace: str = "research",
    ant: bool = True,
    message: str = UNSCHEDULABLE,
    phase: str = "",
    conditions: list[dict[str, Any]] | None = None,
) -> Any:
    labels = {"apps.kubernetes.io/pod-index": str(index)}
    if ant:
        labels |= {"ant.dev/managed-by": "ant", "ant.dev/job": job}
    spec: dict[str, Any] = {
        "containers": [
            {"name": "main", "image": "x", "resources": {"requests": {"google.com/tpu": str(tpus)}}}
        ]
    }
    if priority is not None:
        spec["priority"] = VALUES[priority]
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase or ("Running" if node else "Pending")}
    if conditions is not None:
        status["conditions"] = conditions
    elif not node:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ]
    return to_message(
        {
            "metadata": {
                "name": f"{job}-{index}",
                "namespace": namespace,
                "uid": f"uid-{job}-{index}-{created}",
                "creationTimestamp": ts(created),
                "labels": labels,
            },
            "spec": spec,
            "status": status,
        },
        core_v1_pb2.Pod,
    )


def node(name: str, *, tpus: int = 4, ready: bool = True, cordoned: bool = False) -> Any:
    return to_message(
        {
            "metadata": {"name": name},
            "spec": {"unschedulable": cordoned},
            "status": {
                "allocatable": {"google.com/tpu": str(tpus), "cpu": "64"},
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        },
        core_v1_pb2.Node,
    )


def priority_class(name: str, value: int) -> Any:
    return to_message({"metadata": {"name": name}, "value": value}, scheduling_v1_pb2.PriorityClass)


NODES = [node(f"tpu-node-{i}") for i in range(8)]


def build(statefulsets: list[Any], pods: list[Any], nodes: list[Any] = NODES, **kw: Any) -> q.Queue:
    ant_pods = [p for p in pods if p.metadata.labels.get("ant.dev/managed-by") == "ant"]
    jobs = jobs_from(statefulsets, ant_pods)
    return q.build_queue(
        statefulsets, jobs, pods, nodes, kw.pop("classes", []), namespace="research", now=NOW, **kw
    )


# ---- quantities and requests ---------------------------------------------------------
def test_pod_requests_follow_the_schedulers_rules() -> None:
    spec = to_message(
        {
            "initContainers": [
                {"name": "fetch", "image": "x", "resources": {"requests": {"cpu": "12"}}},
                {
                    "name": "proxy",
                    "image": "x",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                },
                {"name": "late", "image": "x", "resources": {"requests": {"cpu": "2"}}},
            ],
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "resources": {"requests": {"google.com/tpu": "4", "cpu": "4"}},
                },
                {"name": "b", "image": "x", "resources": {"requests": {"cpu": "500m"}}},
            ],
            "overhead": {"cpu": "250m"},
        },
        core_v1_pb2.PodSpec,
    )
    requests = q.pod_requests(spec)
    # cpu: max(containers 4.5 + sidecar 1, init peak 12) + overhead 0.25
    assert requests == {
        "google.com/tpu": Fraction(4),
        "cpu": Fraction(49, 4),
        "memory": Fraction(2**30),
    }


# ---- order ---------------------------------------------------------------------------
def test_waiting_jobs_are_ordered_by_priority_then_submission_time() -> None:
    stses = [
        statefulset("opp-old", submitted=30),
        statefulset("opp-new", submitted=5),
        statefulset("normal-new", priority="normal", submitted=1),
        statefulset("high", priority="high", submitted=2),
        statefulset("opp-mid", submitted=10),
        statefulset("running", priority="high", submitted=60),
    ]
    pods = [
        pod("opp-old", 0, created=30),
        pod("opp-new", 0, created=5),
        pod("normal-new", 0, priority="normal", created=1),
        pod("high", 0, priority="high", created=2),
        pod("opp-mid", 0, created=10),
        pod("running", 0, priority="high", node="tpu-node-0", created=60),
    ]
    queue = build(stses, pods)
    assert [(w.position, w.job.name) for w in queue.items] == [
        (1, "high"),
        (2, "normal-new"),
        (3, "opp-old"),
        (4, "opp-mid"),
        (5, "opp-new"),
    ]
    assert [w.priority_value for w in queue.items] == [100_000, 10_000, 1000, 1000, 1000]


def test_ties_within_a_second_go_by_name_and_terminating_jobs_do_not_wait() -> None:
    stses = [
        statefulset("b", submitted=3),
        statefulset("a", submitted=3),
        statefulset("gone", submitted=9, deleting=True),
    ]
    pods = [pod("b", 0), pod("a", 0), pod("gone", 0)]
    assert [w.job.name for w in build(stses, pods).items] == ["a", "b"]


def test_priority_comes_from_the_pods_else_the_class_else_ants_levels() -> None:
    stses = [
        statefulset("from-pod", priority="normal"),
        statefulset("from-class", priority="high"),
        statefulset("from-levels", priority="normal", submitted=11),
    ]
    pods = [pod("from-pod", 0, priority="normal")]  # the others' pods are not created yet
    queue = build(stses, pods, classes=[priority_class("ant-high", 123_456)])
    values = {w.job.name: w.priority_value for w in queue.items}
    assert values == {"from-pod": 10_000, "from-class": 123_456, "from-levels": 10_000}
    missing = {w.job.name: (w.reason, w.message) for w in queue.items}["from-class"]
    assert missing == ("NotCreated", "1 pod(s) not created yet (ant show from-class)")


def test_only_user_keeps_the_positions_in_the_whole_queue() -> None:
    stses = [statefulset("a", submitted=3, user="alice"), statefulset("b", submitted=2, user="bob")]
    queue = q.only_user(build(stses, [pod("a", 0), pod("b", 0)]), "bob")
    assert [(w.position, w.job.name) for w in queue.items] == [(2, "b")]


# ---- one waiting job ------------------------------------------------------------------
def test_a_partial_job_counts_pending_pods_and_what_its_running_pods_hold() -> None:
    stses = [statefulset("gang", replicas=4, submitted=20)]
    pods = [
        pod("gang", 0, node="tpu-node-0", created=20),
        pod("gang", 1, node="tpu-node-1", created=20),
        pod("gang", 2, created=3, message="first message"),
        pod("gang", 3, created=7, message="second message"),
    ]
    (w,) = build(stses, pods).items
    assert (w.pending, w.replicas, w.scheduled, w.partial) == (2, 4, 2, True)
    assert w.requests == {"google.com/tpu": 4, "cpu": 8}
    assert w.pending_requests("google.com/tpu") == 8
    assert w.held("google.com/tpu") == 8
    # Waiting since the oldest unscheduled pod; the reason is the first one's by index.
    assert w.waiting_since == NOW - timedelta(minutes=7)
    assert (w.reason, w.message) == ("Unschedulable", "first message")


def test_a_job_whose_pods_are_not_created_waits_since_its_submission() -> None:
    (w,) = build([statefulset("fresh", replicas=2, submitted=4)], []).items
    assert not w.partial
    assert w.pending == 2
    assert w.waiting_since == NOW - timedelta(minutes=4)
    assert w.reason == "NotCreated"


# ---- capacity ---------------------------------------------------------------------------
def test_capacity_counts_ready_schedulable_nodes_and_every_live_pod_in_scope() -> None:
    nodes = [
        *(node(f"n{i}") for i in range(6)),
        node("not-ready", ready=False),
        node("cordoned", cordoned=True),
        node("cpu-only", tpus=0),
    ]
    pods = [
        pod("a", 0, node="n0"),
        pod("a", 1, node="n1"),
        pod("plain", 0, node="n2", ant=False, tpus=2),  # not ant's: still holds TPUs
        pod("done", 0, node="n3", phase="Succeeded"),  # finished: holds nothing
        pod("b", 0),
        pod("b", 1),
        pod("c", 0, tpus=1, ant=False),
    ]
    stses = [statefulset("a", replicas=2), statefulset("b", replicas=2)]
    # Only what the pods in scope request: free is unknown (unless they take it all).
    (cap,) = build(stses, pods, nodes).capacity
    assert cap == q.Capacity(
        "google.com/tpu",
        allocatable=Fraction(24),
        nodes=6,
        running=Fraction(10),
        pending=Fraction(9),
    )
    assert cap.free is None
    # With the cluster's usage (these pods are all there is), node by node.
    (cap,) = build(stses, pods, nodes, usage=cluster_usage(nodes, pods)).capacity
    assert (cap.cluster_requested, cap.free) == (10, 14)


def test_free_capacity_is_the_clusters_not_the_namespaces() -> None:
    """`ant -n bob-private queue` once said 32 free while research held all 32."""
    elsewhere = [pod("big", i, node=f"tpu-node-{i}", ant=False) for i in range(8)]
    mine: list[Any] = []
    (unknown,) = build([], mine).capacity  # bob's namespace alone: it cannot know
    assert (unknown.running, unknown.free) == (0, None)
    everyone = cluster_usage(NODES, elsewhere)
    (known,) = build([], mine, usage=everyone).capacity
    assert (known.running, known.cluster_requested, known.free) == (0, 32, 0)
    from_cache = cluster_usage(NODES, None, lambda: everyone.nodes)
    assert from_cache.source == "cache"
    assert build([], mine, usage=from_cache).capacity[0].free == 0
    nothing = cluster_usage(NODES, None, lambda: None)
    assert (nothing.known, nothing.why_unknown) == (False, UNKNOWN_WHY)
    out, _ = render(build([], mine, usage=nothing))
    assert out.splitlines()[1] == f"google.com/tpu: free unknown ({UNKNOWN_WHY}); at most 32"
    out, _ = render(build([], mine, usage=everyone))
    assert out.splitlines()[1] == (
        "google.com/tpu: 0 free in the cluster (32 requested by running pods; "
        "from the pods of every namespace)"
    )


def test_capacity_is_shown_for_the_accelerators_present_else_tpus() -> None:
    gpu = to_message(
        {
            "metadata": {"name": "g"},
            "status": {
                "allocatable": {"nvidia.com/gpu": "8"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
        core_v1_pb2.Node,
    )
    assert [c.resource for c in build([], [], [*NODES, gpu]).capacity] == [
        "google.com/tpu",
        "nvidia.com/gpu",
    ]
    assert [c.resource for c in build([], [], []).capacity] == ["google.com/tpu"]
    assert [c.resource for c in build([], [], NODES, resources=["cpu"]).capacity] == ["cpu"]
    assert build([], [], NODES, resources=["cpu"]).capacity[0].allocatable == 8 * 64


# ---- preemptions -----------------------------------------------------------------------
def event(pod_name: str, uid: str, at: datetime, reason: str = "Preempted") -> Any:
    return to_message(
        {
            "metadata": {"name": f"{pod_name}.1", "namespace": "research"},
            "involvedObject": {
                "kind": "Pod",
                "namespace": "research",
                "name": pod_name,
                "uid": uid,
            },
            "reason": reason,
            "message": "Preempted by pod 1234 on node tpu-node-0",
            "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingComponent": "default-scheduler",
        },
        core_v1_pb2.Event,
    )


def disrupted(job: str, index: int, at: datetime) -> Any:
    condition = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": "default-scheduler: preempting to accommodate a higher priority pod",
        "lastTransitionTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return pod(job, index, node="tpu-node-3", conditions=[condition])


T0 = NOW - timedelta(minutes=5)


def test_preemptions_come_from_events_and_conditions_once_per_pod() -> None:
    events = [
        event("bert-0", "p0", T0 + timedelta(microseconds=1500)),
        event("bert-0", "p0", T0 + timedelta(seconds=1)),  # the same pod again: once
        event("bert-1", "p1", T0, reason="Scheduled"),  # not a preemption
    ]
    victim = disrupted("bert", 1, T0 + timedelta(seconds=2))
    found = q.preemptions_in(events, [victim, pod("bert", 2, node="n")])
    assert [(p.pod, p.pod_uid, p.at) for p in found] == [
        ("bert-0", "p0", T0 + timedelta(microseconds=1500)),
        ("bert-1", victim.metadata.uid, T0 + timedelta(seconds=2)),
    ]


@pytest.mark.parametrize(
    ("name", "job"), [("bert-0", "bert"), ("bert-2-11", "bert-2"), ("bert", ""), ("a-b", "")]
)
def test_job_of_pod(name: str, job: str) -> None:
    assert q.job_of_pod(name) == job


def test_a_burst_of_preemptions_counts_once_and_counting_is_idempotent() -> None:
    burst = [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=20)]
    assert q.count_preemptions(0, None, burst) == (1, T0 + timedelta(seconds=20))
    # The same events seen again change nothing.
    assert q.count_preemptions(1, T0 + timedelta(seconds=20), burst) == (
        1,
        T0 + timedelta(seconds=20),
    )
    later = T0 + timedelta(minutes=3)
    assert q.count_preemptions(1, T0 + timedelta(seconds=20), [*burst, later]) == (2, later)
    # Before the job existed: an earlier job of the same name.
    assert q.count_preemptions(0, None, burst, created_at=T0 + timedelta(seconds=10)) == (
        1,
        T0 + timedelta(seconds=20),
    )
    assert q.count_preemptions(0, None, burst, created_at=NOW) == (0, None)


def test_tally_updates_the_jobs_annotations_and_leaves_the_others_alone() -> None:
    stses = [
        statefulset("bert", replicas=2, submitted=60),
        statefulset("t5", submitted=60),
        statefulset(
            "gpt",
            submitted=60,
            annotations={
                "ant.dev/preemptions": "3",
                "ant.dev/last-preempted-at": (T0 + timedelta(seconds=1)).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
            },
        ),
    ]
    jobs = jobs_from(stses, [])
    events = [
        event("bert-0", "b0", T0),
        event("bert-1", "b1", T0 + timedelta(milliseconds=40)),
        event("gpt-0", "g0", T0 + timedelta(seconds=1)),  # counted already
    ]
    bert, t5, gpt = q.tally_preemptions(jobs, events)
    assert bert.preemptions == 1
    assert bert.last_preempted_at == T0 + timedelta(milliseconds=40)
    assert bert.annotations["ant.dev/last-preempted-at"] == (
        (T0 + timedelta(milliseconds=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    assert t5 is jobs[1]
    assert gpt is jobs[2]
    assert gpt.preemptions == 3


# ---- rendering --------------------------------------------------------------------------
def render(queue: q.Queue, *, wide: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    views.render_queue(Terminal(Environment(stdout=out, stderr=err, vars={})), queue, wide=wide)
    return out.getvalue(), err.getvalue()


def test_the_queue_table_with_capacity_and_partial_jobs() -> None:
    stses = [
        statefulset("gang", replicas=2, submitted=20, priority="normal", user="bob"),
        statefulset("sweep-0", submitted=10),
    ]
    pods = [
        pod("gang", 0, node="tpu-node-0", priority="normal", created=20),
        pod("gang", 1, priority="normal", created=3),
        pod("sweep-0", 0, created=10),
        *(pod(f"big-{i}", 0, node=f"tpu-node-{i}", priority="high") for i in range(1, 8)),
    ]
    out, err = render(build(stses, pods))
    reason = (
        "0/8 nodes are available: 8 Insufficient google.com/tpu. "
        "preemption: not eligible due to preemptionPolicy=Never."
    )
    assert out.splitlines() == [
        "#   NAME      USER    PRIORITY        STATUS    PENDING   PER POD            WAITING   "
        "REASON",
        "1   gang      bob     normal          Partial   1/2       google.com/tpu=4   3m        "
        + reason,
        "2   sweep-0   alice   opportunistic   Pending   1/1       google.com/tpu=4   10m       "
        + reason,
        "google.com/tpu: 32 allocatable on 8 node(s); requested by running pods 32, "
        "by pending pods 8 (pods in namespace research)",
        "google.com/tpu: 0 free (the running pods in namespace research take all of it)",
        "partially scheduled: gang holds 4 google.com/tpu idle until all their pods are scheduled",
    ]
    assert err == ""


def test_an_empty_queue_still_shows_capacity() -> None:
    out, err = render(build([], []))
    assert err == "no jobs waiting in research\n"
    assert out.startswith("google.com/tpu: 32 allocatable on 8 node(s);")


def test_the_queue_document() -> None:
    stses = [
        statefulset("gang", replicas=2, submitted=20, annotations={"ant.dev/preemptions": "1"})
    ]
    pods = [pod("gang", 0, node="tpu-node-0", created=20), pod("gang", 1, created=3)]
    doc = documents.queue(build(stses, pods))
    assert doc["kind"] == "Queue"
    assert doc["namespace"] == "research"
    (item,) = doc["items"]
    assert item == {
        "position": 1,
        "name": "gang",
        "namespace": "research",
        "user": "alice",
        "priority": "opportunistic",
        "priorityValue": 1000,
        "status": "Partial",
        "partial": True,
        "pending": 1,
        "replicas": 2,
        "requestsPerPod": {"cpu": 8, "google.com/tpu": 4},
        "pendingRequests": {"cpu": 8, "google.com/tpu": 4},
        "heldRequests": {"cpu": 8, "google.com/tpu": 4},
        "submittedAt": ts(20),
        "waitingSince": ts(3),
        "waitingSeconds": 180,
        "reason": "Unschedulable",
        "message": UNSCHEDULABLE,
        "preemptions": 1,
        "lastPreemptedAt": None,
        "sweep": None,
        "gang": None,
        "kueueQueue": None,
        "kueuePosition": None,
        "clusterQueuePosition": None,
    }
    assert doc["capacity"] == [
        {
            "resource": "google.com/tpu",
            "nodes": 8,
            "allocatable": 32,
            "requestedByRunning": 4,
            "requestedByPending": 4,
            "free": None,  # only the namespace's pods are known
        }
    ]
    assert (doc["capacitySource"], doc["clusterRequested"]) == (None, None)
    known = documents.queue(build(stses, pods, usage=cluster_usage(NODES, pods)))
    assert known["capacity"][0]["free"] == 28
    assert (known["capacitySource"], known["clusterRequested"]) == (
        "cluster",
        {"google.com/tpu": 4},
    )
