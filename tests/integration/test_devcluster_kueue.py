"""Kueue on the dev cluster (`cluster.py up --kueue`): gang admission, visibility, RBAC."""

from __future__ import annotations

import json
import ssl
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client

from tests.helpers import unique, wait_for
from tests.integration.test_devcluster import (
    as_user,
    describe,
    headless_service,
    pods_of,
    statefulset,
    wait_pods_gone,
    wait_running,
)

if TYPE_CHECKING:
    from tests.conftest import DevCluster, Kueue

pytestmark = pytest.mark.cluster

KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta2"
ADMISSION_GATE = "kueue.x-k8s.io/admission"


def local_queue(name: str, cluster_queue: str, stop_policy: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{KUEUE_GROUP}/{KUEUE_VERSION}",
        "kind": "LocalQueue",
        "metadata": {"name": name},
        "spec": {"clusterQueue": cluster_queue, "stopPolicy": stop_policy},
    }


def get_json(devcluster: DevCluster, user: str, path: str) -> Any:
    request = urllib.request.Request(
        devcluster.server + path,
        headers={"Authorization": f"Bearer {devcluster.tokens[user]}"},
    )
    ctx = ssl.create_default_context(cafile=str(devcluster.ca))
    with urllib.request.urlopen(request, context=ctx, timeout=10) as resp:
        return json.load(resp)


def gates(pod: Any) -> list[str]:
    return [g.name for g in pod.spec.scheduling_gates or []]


def test_statefulset_is_gated_then_admitted_whole(devcluster: DevCluster, kueue: Kueue) -> None:
    (ns,) = kueue.namespaces
    queue, name = unique("hold"), unique("gang")
    replicas, tpus = 2, devcluster.tpus_per_node
    with devcluster.api_client("admin") as admin_api:
        objects = client.CustomObjectsApi(admin_api)
        # A LocalQueue on hold: the job waits, deterministically, without using the pool.
        objects.create_namespaced_custom_object(
            KUEUE_GROUP,
            KUEUE_VERSION,
            ns,
            "localqueues",
            local_queue(queue, kueue.cluster_queue, "Hold"),
        )
        try:
            with as_user(devcluster, "alice") as (core, apps):
                sts = statefulset(name, replicas, tpus=tpus)
                sts["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = queue
                core.create_namespaced_service(ns, headless_service(name))
                apps.create_namespaced_stateful_set(ns, sts)
                try:

                    def all_gated() -> list[Any] | None:
                        pods = pods_of(core, ns, name)
                        ok = len(pods) == replicas and all(ADMISSION_GATE in gates(p) for p in pods)
                        return pods if ok else None

                    pods = wait_for(
                        "every pod gated by Kueue",
                        all_gated,
                        state=lambda: [gates(p) for p in pods_of(core, ns, name)],
                    )
                    assert not any(p.spec.node_name for p in pods)

                    objects.patch_namespaced_custom_object(
                        KUEUE_GROUP,
                        KUEUE_VERSION,
                        ns,
                        "localqueues",
                        queue,
                        {"spec": {"stopPolicy": "None"}},
                    )
                    pods = wait_running(core, ns, name, replicas)
                    assert all(not gates(p) for p in pods), describe(pods)
                    assert {p.metadata.labels.get("kueue.x-k8s.io/podset") for p in pods} == {
                        "main"
                    }
                    # One Workload for the whole StatefulSet, admitted by the dev ClusterQueue.
                    with devcluster.api_client("alice") as alice_api:
                        workloads = client.CustomObjectsApi(
                            alice_api
                        ).list_namespaced_custom_object(
                            KUEUE_GROUP, KUEUE_VERSION, ns, "workloads"
                        )["items"]
                    (workload,) = [
                        w
                        for w in workloads
                        if any(o["name"] == name for o in w["metadata"].get("ownerReferences", []))
                    ]
                    admission = workload["status"]["admission"]
                    assert admission["clusterQueue"] == kueue.cluster_queue
                    (podset,) = admission["podSetAssignments"]
                    assert podset["count"] == replicas
                    assert podset["resourceUsage"]["google.com/tpu"] == str(replicas * tpus)
                finally:
                    apps.delete_namespaced_stateful_set(name, ns)
                    core.delete_namespaced_service(name, ns)
                wait_pods_gone(core, ns, name)
        finally:
            objects.delete_namespaced_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, ns, "localqueues", queue
            )


def test_researchers_read_queues_and_pending_workloads(
    devcluster: DevCluster, kueue: Kueue
) -> None:
    (ns,) = kueue.namespaces
    for user in ("alice", "viewer"):
        with devcluster.api_client(user) as api:
            objects = client.CustomObjectsApi(api)
            cq = objects.get_cluster_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, "clusterqueues", kueue.cluster_queue
            )
            quota = {
                r["name"]: r["nominalQuota"]
                for r in cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
            }
            assert quota["google.com/tpu"] == str(devcluster.node_count * devcluster.tpus_per_node)
            # The visibility API, through the apiserver's aggregation layer.
            pending = get_json(
                devcluster,
                user,
                f"/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/{ns}/localqueues/"
                f"{kueue.local_queue}/pendingworkloads",
            )
            assert pending["kind"] == "PendingWorkloadsSummary"
