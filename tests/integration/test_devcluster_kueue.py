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
    headless_service,
    pods_of,
    statefulset,
    wait_pods_gone,
)

if TYPE_CHECKING:
    from tests.conftest import DevCluster, Kueue

pytestmark = pytest.mark.cluster

KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta2"
ADMISSION_GATE = "kueue.x-k8s.io/admission"


def local_queue(name: str, kueue: Kueue, stop_policy: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{KUEUE_GROUP}/{KUEUE_VERSION}",
        "kind": "LocalQueue",
        "metadata": {"name": name},
        "spec": {"clusterQueue": kueue.cluster_queue, "stopPolicy": stop_policy},
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


def admitted_workload(objects: client.CustomObjectsApi, ns: str, sts: str) -> Any:
    """The StatefulSet's Workload once Kueue has admitted it, else None."""
    items = objects.list_namespaced_custom_object(KUEUE_GROUP, KUEUE_VERSION, ns, "workloads")
    for workload in items["items"]:
        if any(o["name"] == sts for o in workload["metadata"].get("ownerReferences", [])):
            conds = workload.get("status", {}).get("conditions", [])
            if any(c["type"] == "Admitted" and c["status"] == "True" for c in conds):
                return workload
    return None


def pods_if(core: client.CoreV1Api, ns: str, app: str, count: int, gated: bool) -> Any:
    """The app's `count` pods once each is (gated) / is not (not gated) held by Kueue."""
    pods = pods_of(core, ns, app)
    if len(pods) == count and all((ADMISSION_GATE in gates(p)) == gated for p in pods):
        return pods
    return None


def test_statefulset_is_gated_then_admitted_whole(devcluster: DevCluster, kueue: Kueue) -> None:
    (ns,) = kueue.namespaces
    queue, name = unique("hold"), unique("gang")
    replicas, tpus = 2, devcluster.tpus_per_node
    with devcluster.api_client("admin") as admin_api, as_user(devcluster, "alice") as (core, apps):
        admin = client.CustomObjectsApi(admin_api)
        # A LocalQueue on hold: the job waits, deterministically, without using the pool.
        admin.create_namespaced_custom_object(
            KUEUE_GROUP, KUEUE_VERSION, ns, "localqueues", local_queue(queue, kueue, "Hold")
        )
        sts = statefulset(name, replicas, tpus=tpus)
        sts["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = queue
        core.create_namespaced_service(ns, headless_service(name))
        apps.create_namespaced_stateful_set(ns, sts)
        try:

            def state() -> list[list[str]]:
                return [gates(p) for p in pods_of(core, ns, name)]

            pods = wait_for(
                "every pod gated by Kueue",
                lambda: pods_if(core, ns, name, replicas, gated=True),
                state=state,
            )
            assert not any(p.spec.node_name for p in pods)

            admin.patch_namespaced_custom_object(
                KUEUE_GROUP,
                KUEUE_VERSION,
                ns,
                "localqueues",
                queue,
                {"spec": {"stopPolicy": "None"}},
            )
            # Admitted whole: one Workload for the StatefulSet, every pod released. (Whether
            # they then run is up to the scheduler and the free nodes: Kueue admits by
            # quota, and this cluster is shared.)
            workload = wait_for(
                "the Workload to be admitted",
                lambda: admitted_workload(client.CustomObjectsApi(core.api_client), ns, name),
            )
            admission = workload["status"]["admission"]
            assert admission["clusterQueue"] == kueue.cluster_queue
            (podset,) = admission["podSetAssignments"]
            assert podset["count"] == replicas
            assert podset["resourceUsage"]["google.com/tpu"] == str(replicas * tpus)
            pods = wait_for(
                "every pod released",
                lambda: pods_if(core, ns, name, replicas, gated=False),
                state=state,
            )
            for pod in pods:
                # The flavor's node labels, added on admission.
                selector = pod.spec.node_selector or {}
                assert selector.get("cloud.google.com/gke-tpu-accelerator") == "tpu-v5p-slice"
                assert pod.metadata.labels.get("kueue.x-k8s.io/podset") == "main"
        finally:
            apps.delete_namespaced_stateful_set(name, ns)
            core.delete_namespaced_service(name, ns)
            wait_pods_gone(core, ns, name)
            admin.delete_namespaced_custom_object(
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
