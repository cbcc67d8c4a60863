"""Gangs without a cluster: which engine a job gets, what ant writes for it, and discovery's
on-disk memory (a scripted server stands in for the API server's discovery)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ant.errors import UsageError, ValidationError
from ant.jobs import gang as gangs
from ant.jobs import kueue_setup
from ant.jobs.gang import Engine, Gang, GangRequest
from ant.jobs.identity import Identity
from ant.jobs.manifest import Provenance, build
from ant.jobs.model import JobStatus, job_from
from ant.jobs.spec import JobSpec
from ant.kube import resources as r
from ant.kube.client import connect
from ant.kube.discovery import Discovery
from tests.unit.scripted_server import respond, scripted_server, write_kubeconfig

SERVED = json.dumps(
    {"kind": "APIResourceList", "resources": [{"name": "podgroups"}, {"name": "podgroups/status"}]}
).encode()


def never_asked() -> bool:
    raise AssertionError("discovery asked when the answer does not matter")


@pytest.mark.parametrize(
    ("request_", "replicas", "serves", "expected"),
    [
        (GangRequest(), 4, True, Gang(Engine.PODGROUP, min_count=4)),
        (GangRequest(min_replicas=2), 4, True, Gang(Engine.PODGROUP, min_count=2)),
        (GangRequest(), 4, False, None),  # no engine: as before (the CLI warns)
        (GangRequest(queue="tpu"), 1, None, Gang(Engine.KUEUE, queue="tpu")),
        (GangRequest(queue="tpu"), 4, None, Gang(Engine.KUEUE, queue="tpu")),
        (GangRequest(), 1, None, None),  # one replica: nothing to gang
        (GangRequest(enabled=False), 4, None, None),
    ],
)
def test_the_engine_a_job_gets(
    request_: GangRequest, replicas: int, serves: bool | None, expected: Gang | None
) -> None:
    asked = never_asked if serves is None else lambda: bool(serves)
    assert gangs.choose(request_, replicas, asked) == expected


@pytest.mark.parametrize(
    ("request_", "error", "text"),
    [
        (GangRequest(enabled=False, queue="tpu"), UsageError, "contradict"),
        (GangRequest(min_replicas=5), ValidationError, "not between 1 and 4"),
        (GangRequest(min_replicas=0), ValidationError, "not between 1 and 4"),
        (GangRequest(enabled=False, min_replicas=2), UsageError, "needs a gang"),
        (GangRequest(queue="tpu", min_replicas=2), UsageError, "Kueue admits every replica"),
        (GangRequest(queue="no spaces"), ValidationError, "not a valid label value"),
    ],
)
def test_gang_flags_that_cannot_work_are_refused(
    request_: GangRequest, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        gangs.validate(request_, 4)


def manifests(gang: Gang | None, priority: str = "normal") -> Any:
    spec = JobSpec(name="bert", image="train:1", replicas=4, priority=priority)
    provenance = Provenance(Identity(username="alice"), "2026-12-01T16:00:00Z", "ant submit")
    return build(spec, "bert", "research", provenance, gang)


def test_a_podgroup_gang_points_its_pods_at_its_group() -> None:
    built = manifests(Gang(Engine.PODGROUP, min_count=3))
    assert built.statefulset["spec"]["template"]["spec"]["schedulingGroup"] == {
        "podGroupName": "bert"
    }
    group = built.podgroup
    assert group["metadata"]["name"] == "bert"
    assert group["metadata"]["labels"]["ant.dev/job"] == "bert"
    assert group["spec"] == {
        "schedulingPolicy": {"gang": {"minCount": 3}},
        "disruptionMode": {"all": {}},
        "priorityClassName": "ant-normal",
    }
    assert [o["kind"] for o in built.objects] == ["Service", "StatefulSet", "PodGroup"]


def test_an_opportunistic_group_says_never_as_its_class_does() -> None:
    group = manifests(Gang(Engine.PODGROUP, min_count=4), "opportunistic").podgroup
    assert group["spec"]["preemptionPolicy"] == "Never"


def test_a_kueue_gang_is_labelled_on_the_statefulset_and_its_pods_not_the_service() -> None:
    built = manifests(Gang(Engine.KUEUE, queue="tpu"), "high")
    wanted = {gangs.QUEUE_LABEL: "tpu", gangs.KUEUE_PRIORITY_LABEL: "ant-high"}
    assert wanted.items() <= built.statefulset["metadata"]["labels"].items()
    assert wanted.items() <= built.statefulset["spec"]["template"]["metadata"]["labels"].items()
    assert gangs.QUEUE_LABEL not in built.service["metadata"]["labels"]
    assert built.podgroup is None


def test_a_gang_with_no_pod_placed_is_queued_not_pending() -> None:
    from ant.jobs.submission import to_messages

    for gang, engine in (
        (Gang(Engine.PODGROUP, min_count=4), "PodGroup"),
        (Gang(Engine.KUEUE, queue="tpu"), "Kueue"),
        (None, ""),
    ):
        _, sts = to_messages(manifests(gang))
        sts.spec.replicas = 4
        job = job_from(sts, [])
        assert job.gang == engine
        assert job.status is (JobStatus.QUEUED if gang else JobStatus.PENDING)


def test_install_queues_plans_flavors_quota_queues_and_priorities() -> None:
    from ant.kube.proto import core_v1_pb2, resource_pb2

    def node(name: str, topology: str, tpus: str) -> Any:
        n = core_v1_pb2.Node()
        n.metadata.name = name
        n.metadata.labels["cloud.google.com/gke-tpu-accelerator"] = "tpu-v5p-slice"
        n.metadata.labels["cloud.google.com/gke-tpu-topology"] = topology
        for k, v in {"google.com/tpu": tpus, "cpu": "64", "memory": "512Gi"}.items():
            n.status.allocatable[k].CopyFrom(resource_pb2.Quantity(string=v))
        return n

    nodes = [node("a", "2x2x2", "4"), node("b", "2x2x2", "4"), node("c", "2x2x4", "4")]
    nodes.append(node("cpu-only", "none", "0"))  # no accelerator: no flavor
    planned = kueue_setup.plan(nodes, cluster_queue="ant", local_queue="q", namespaces=["ns"])
    kinds = [(p.resource.kind, p.name) for p in planned]
    assert kinds == [
        ("ResourceFlavor", "tpu-v5p-slice-2x2x2"),
        ("ResourceFlavor", "tpu-v5p-slice-2x2x4"),
        ("ClusterQueue", "ant"),
        ("LocalQueue", "q"),
        ("WorkloadPriorityClass", "ant-opportunistic"),
        ("WorkloadPriorityClass", "ant-normal"),
        ("WorkloadPriorityClass", "ant-high"),
    ]
    cq = planned[2].object["spec"]
    assert cq["preemption"] == {"withinClusterQueue": "LowerPriority"}
    [group] = cq["resourceGroups"]
    assert group["coveredResources"] == ["cpu", "google.com/tpu", "memory"]
    quota = {
        f["name"]: {x["name"]: x["nominalQuota"] for x in f["resources"]} for f in group["flavors"]
    }
    assert quota["tpu-v5p-slice-2x2x2"] == {"cpu": "128", "google.com/tpu": "8", "memory": "1024Gi"}
    assert planned[3].namespace == "ns"
    assert [p.object["value"] for p in planned[4:]] == [1_000, 10_000, 100_000]


def test_discovery_is_remembered_on_disk_and_forgotten_on_request(tmp_path: Path) -> None:
    cache = tmp_path / "discovery.json"
    with scripted_server() as server:
        client = connect(str(write_kubeconfig(tmp_path / "kubeconfig", server.url)), env={})
        server.replies.append(respond(200, SERVED))
        assert Discovery(client, cache).serves(r.PODGROUPS)
        # Another command (a new Discovery) asks no more: the answer is on disk.
        assert Discovery(client, cache).serves(r.PODGROUPS)
        assert len(server.seen) == 1
        assert server.seen[0].path == "/apis/scheduling.k8s.io/v1beta1"
        Discovery(client, cache).forget(r.PODGROUPS)
        server.replies.append(respond(404, b'{"kind":"Status","code":404}'))
        assert not Discovery(client, cache).serves(r.PODGROUPS)  # no longer served
        assert len(server.seen) == 2
        # Out of date after the TTL: asked again.
        server.replies.append(respond(200, SERVED))
        assert Discovery(client, cache, ttl=0).serves(r.PODGROUPS)
        assert len(server.seen) == 3
