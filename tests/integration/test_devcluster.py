"""The dev cluster itself: auth, RBAC, scheduling onto kwok TPU nodes, logs, priority."""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.helpers import wait_for

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = pytest.mark.cluster

T = TypeVar("T")
RESEARCH = "research"
LOG_LINE = "train.py:204] step=12000 loss=2.4173"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def headless_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 8476}]},
    }


def statefulset(
    name: str,
    replicas: int,
    *,
    tpus: int = 0,
    priority_class: str | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "train",
        "image": "us-docker.pkg.dev/ant-demo/train:latest",
        "command": ["python", "train.py"],
    }
    if tpus:
        container["resources"] = {"limits": {"google.com/tpu": str(tpus)}}
    pod_spec: dict[str, Any] = {"containers": [container], "terminationGracePeriodSeconds": 0}
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def pods_of(core: client.CoreV1Api, namespace: str, app: str) -> list[Any]:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def is_ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in conditions
    )


def describe(pods: list[Any]) -> str:
    return (
        ", ".join(f"{p.metadata.name}={p.status.phase}@{p.spec.node_name or '-'}" for p in pods)
        or "no pods"
    )


def wait_running(core: client.CoreV1Api, namespace: str, app: str, count: int) -> list[Any]:
    last: list[Any] = []

    def probe() -> list[Any] | None:
        nonlocal last
        last = pods_of(core, namespace, app)
        return last if len(last) == count and all(is_ready(p) for p in last) else None

    return wait_for(f"{count} Running+Ready pods of {app}", probe, state=lambda: describe(last))


def wait_pods_gone(core: client.CoreV1Api, namespace: str, app: str) -> None:
    last: list[Any] = []

    def probe() -> bool:
        nonlocal last
        last = pods_of(core, namespace, app)
        return not last

    wait_for(f"pods of {app} to go away", probe, state=lambda: describe(last))


@contextmanager
def as_user(
    devcluster: DevCluster, user: str
) -> Iterator[tuple[client.CoreV1Api, client.AppsV1Api]]:
    with devcluster.api_client(user) as api:
        yield client.CoreV1Api(api), client.AppsV1Api(api)


def forbidden(call: Callable[[], object]) -> bool:
    try:
        call()
    except ApiException as err:
        if err.status == 403:
            return True
        raise
    return False


# ---------------------------------------------------------------------------


def test_tls_is_verified_and_users_authenticate(devcluster: DevCluster) -> None:
    kubeconfig = devcluster.kubeconfig.read_text()
    assert "insecure-skip-tls-verify" not in kubeconfig
    assert "certificate-authority-data" in kubeconfig

    # The serving cert chains to the cluster CA (and not to the system roots).
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(devcluster.server + "/readyz", timeout=5)
    ctx = ssl.create_default_context(cafile=str(devcluster.ca))
    with urllib.request.urlopen(devcluster.server + "/livez", context=ctx, timeout=5) as resp:
        assert resp.status == 200

    expected = {"admin": "system:masters", "alice": "ant:researchers", "bob": "ant:researchers"}
    for user, group in [*expected.items(), ("carol", None)]:
        with devcluster.api_client(user) as api:
            review = client.AuthenticationV1Api(api).create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            )
        info = review.status.user_info
        assert info.username == user
        if group:
            assert group in info.groups


def test_kubectl_contexts(devcluster: DevCluster) -> None:
    for context in ("admin", "alice", "bob", "carol-cert"):
        proc = subprocess.run(
            devcluster.kubectl_args("-n", RESEARCH, "get", "pods", context=context),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, f"kubectl --context {context}: {proc.stderr}"
    proc = subprocess.run(
        devcluster.kubectl_args("-n", "bob-private", "get", "pods", context="alice"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0
    assert "Forbidden" in proc.stderr


def test_nodes_are_ready_untainted_tpu_hosts(devcluster: DevCluster) -> None:
    with as_user(devcluster, "alice") as (core, _):
        nodes = {n.metadata.name: n for n in core.list_node(label_selector="type=kwok").items}
    assert sorted(nodes) == sorted(f"tpu-node-{i}" for i in range(devcluster.node_count))
    for name, node in nodes.items():
        assert not node.spec.taints, f"{name} is tainted: {node.spec.taints}"
        ready = {c.type: c.status for c in node.status.conditions}.get("Ready")
        assert ready == "True", f"{name} is not Ready"
        assert node.status.allocatable["google.com/tpu"] == str(devcluster.tpus_per_node)
        assert node.metadata.labels["cloud.google.com/gke-tpu-accelerator"] == "tpu-v5p-slice"
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"


def test_researcher_runs_statefulset_and_reads_logs(devcluster: DevCluster) -> None:
    name = unique("sts")
    with as_user(devcluster, "alice") as (core, apps):
        core.create_namespaced_service(RESEARCH, headless_service(name))
        try:
            apps.create_namespaced_stateful_set(RESEARCH, statefulset(name, 3))
            pods = wait_running(core, RESEARCH, name, 3)

            assert sorted(p.metadata.name for p in pods) == [f"{name}-{i}" for i in range(3)]
            for pod in pods:
                assert pod.spec.node_name.startswith("tpu-node-"), pod.spec.node_name
                assert pod.status.pod_ip, f"{pod.metadata.name} has no podIP"

            # apiserver -> kwok's kubelet API (TLS verified against the cluster CA) -> log file
            logs = core.read_namespaced_pod_log(f"{name}-0", RESEARCH, container="train")
            assert LOG_LINE in logs
            assert len(logs.splitlines()) >= 5
            tail = core.read_namespaced_pod_log(f"{name}-1", RESEARCH, tail_lines=2)
            assert len(tail.splitlines()) == 2
        finally:
            apps.delete_namespaced_stateful_set(name, RESEARCH)
            core.delete_namespaced_service(name, RESEARCH)
        wait_pods_gone(core, RESEARCH, name)


def test_bob_private_is_bobs_alone(devcluster: DevCluster) -> None:
    name = unique("svc")
    with as_user(devcluster, "alice") as (core, apps):
        assert forbidden(lambda: core.list_namespaced_pod("bob-private"))
        assert forbidden(
            lambda: core.create_namespaced_service("bob-private", headless_service(name))
        )
        assert forbidden(
            lambda: apps.create_namespaced_stateful_set("bob-private", statefulset(name, 1))
        )
    with as_user(devcluster, "carol") as (core, _):
        assert forbidden(lambda: core.list_namespaced_pod("bob-private"))
    with as_user(devcluster, "bob") as (core, apps):
        core.list_namespaced_pod("bob-private")
        apps.list_namespaced_stateful_set("bob-private")
        core.create_namespaced_service("bob-private", headless_service(name))
        core.delete_namespaced_service(name, "bob-private")


def test_namespace_fixture_grants_researchers(devcluster: DevCluster, namespace: str) -> None:
    for user in ("alice", "bob", "carol"):
        with as_user(devcluster, user) as (core, apps):
            core.list_namespaced_pod(namespace)
            apps.list_namespaced_stateful_set(namespace)
            assert forbidden(lambda core=core: core.list_namespaced_secret(namespace))
    with as_user(devcluster, "alice") as (core, _):
        # Cluster-wide reads for researchers.
        core.list_namespace()
        core.list_node()


def test_priority_fills_pool_and_low_priority_waits(devcluster: DevCluster, namespace: str) -> None:
    tpus = devcluster.tpus_per_node
    nodes = devcluster.node_count
    high, low = unique("high"), unique("low")
    with devcluster.api_client("admin") as admin_api:
        scheduling = client.SchedulingV1Api(admin_api)
        scheduling.create_priority_class(
            {"metadata": {"name": high}, "value": 1000, "description": "test: high"}
        )
        scheduling.create_priority_class(
            {
                "metadata": {"name": low},
                "value": 10,
                "preemptionPolicy": "Never",
                "description": "test: low, never preempts",
            }
        )
        try:
            with as_user(devcluster, "alice") as (core, apps):
                try:
                    apps.create_namespaced_stateful_set(
                        namespace, statefulset(high, nodes, tpus=tpus, priority_class=high)
                    )
                    pods = wait_running(core, namespace, high, nodes)
                    # One TPU host per pod: the pool is full.
                    assert len({p.spec.node_name for p in pods}) == nodes
                    assert all(p.spec.priority == 1000 for p in pods)

                    apps.create_namespaced_stateful_set(
                        namespace, statefulset(low, 1, tpus=tpus, priority_class=low)
                    )

                    def unschedulable() -> Any:
                        pods = pods_of(core, namespace, low)
                        if len(pods) != 1:
                            return None
                        conds = {c.type: c for c in pods[0].status.conditions or []}
                        cond = conds.get("PodScheduled")
                        if cond and cond.status == "False" and cond.reason == "Unschedulable":
                            return pods[0]
                        return None

                    pod = wait_for(f"{low}-0 to be Unschedulable", unschedulable)
                    assert pod.status.phase == "Pending"
                    assert pod.spec.priority == 10
                    assert "google.com/tpu" in (
                        {c.type: c for c in pod.status.conditions}["PodScheduled"].message
                    )
                    # preemptionPolicy Never: nothing of the high job was evicted.
                    assert len(wait_running(core, namespace, high, nodes)) == nodes
                finally:
                    for sts in (high, low):
                        try:
                            apps.delete_namespaced_stateful_set(sts, namespace)
                        except ApiException as err:
                            if err.status != 404:
                                raise
                # Give the TPUs back before the next test.
                wait_pods_gone(core, namespace, high)
                wait_pods_gone(core, namespace, low)
        finally:
            scheduling.delete_priority_class(high)
            scheduling.delete_priority_class(low)


def test_up_is_idempotent(devcluster: DevCluster) -> None:
    started = time.monotonic()
    proc = devcluster.run_script("up", timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(devcluster.kubeconfig)
    assert elapsed < 15, f"`up` on a running cluster took {elapsed:.1f}s"

    request = urllib.request.Request(
        devcluster.server + "/readyz?verbose",
        headers={"Authorization": f"Bearer {devcluster.admin_token}"},
    )
    ctx = ssl.create_default_context(cafile=str(devcluster.ca))
    with urllib.request.urlopen(request, context=ctx, timeout=5) as resp:
        assert resp.status == 200
        assert "readyz check passed" in resp.read().decode()


def test_viewer_reads_research_and_writes_nothing(devcluster: DevCluster) -> None:
    name = unique("view")
    with as_user(devcluster, "alice") as (core, apps):
        core.create_namespaced_service(RESEARCH, headless_service(name))
        try:
            apps.create_namespaced_stateful_set(RESEARCH, statefulset(name, 1))
            wait_running(core, RESEARCH, name, 1)
            with as_user(devcluster, "viewer") as (vcore, vapps):
                # What `ant list/show/queue/logs` read.
                assert [
                    s.metadata.name
                    for s in vapps.list_namespaced_stateful_set(
                        RESEARCH, label_selector=f"app={name}"
                    ).items
                ] == [name]
                assert len(pods_of(vcore, RESEARCH, name)) == 1
                assert LOG_LINE in vcore.read_namespaced_pod_log(f"{name}-0", RESEARCH)
                vcore.read_namespaced_service(name, RESEARCH)
                vcore.list_namespaced_event(RESEARCH)
                vcore.list_node()
                # ... and nothing else.
                assert forbidden(lambda: vcore.delete_namespaced_pod(f"{name}-0", RESEARCH))
                assert forbidden(
                    lambda: vapps.patch_namespaced_stateful_set_scale(
                        name, RESEARCH, {"spec": {"replicas": 0}}
                    )
                )
                assert forbidden(
                    lambda: vcore.create_namespaced_service(RESEARCH, headless_service(unique("v")))
                )
                assert forbidden(lambda: vcore.list_namespaced_secret(RESEARCH))
                assert forbidden(lambda: vcore.list_namespaced_pod("queued"))
        finally:
            apps.delete_namespaced_stateful_set(name, RESEARCH)
            core.delete_namespaced_service(name, RESEARCH)
        wait_pods_gone(core, RESEARCH, name)


def test_researchers_have_the_same_rights_in_queued(devcluster: DevCluster) -> None:
    queued = "queued"
    for user in ("alice", "bob"):
        name = unique(user)
        with as_user(devcluster, user) as (core, apps):
            core.create_namespaced_service(queued, headless_service(name))
            core.delete_namespaced_service(name, queued)
            apps.list_namespaced_stateful_set(queued)
            assert forbidden(lambda core=core: core.list_namespaced_secret(queued))


def test_podgroup_gang_waits_for_min_count(devcluster: DevCluster, namespace: str) -> None:
    """scheduling.k8s.io/v1beta1 is served and kube-scheduler gang-schedules a PodGroup."""
    group = unique("gang")

    def pod(i: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{group}-{i}", "labels": {"app": group}},
            "spec": {
                "schedulingGroup": {"podGroupName": group},
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "train", "image": "train:latest"}],
            },
        }

    def scheduled() -> list[str]:
        return [p.metadata.name for p in pods_of(core, namespace, group) if p.spec.node_name]

    with devcluster.api_client("alice") as api:
        core = client.CoreV1Api(api)
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "scheduling.k8s.io",
            "v1beta1",
            namespace,
            "podgroups",
            {
                "apiVersion": "scheduling.k8s.io/v1beta1",
                "kind": "PodGroup",
                "metadata": {"name": group},
                "spec": {"schedulingPolicy": {"gang": {"minCount": 2}}},
            },
        )
        core.create_namespaced_pod(namespace, pod(0))
        # A pod outside the gang, created after pod 0, gets bound: the scheduler has been
        # through pod 0 too, and held it because its gang needs two.
        solo = pod(9)
        del solo["spec"]["schedulingGroup"]
        solo["metadata"]["labels"] = {"app": f"{group}-solo"}
        core.create_namespaced_pod(namespace, solo)
        wait_for(
            "the pod outside the gang to be bound",
            lambda: core.read_namespaced_pod(f"{group}-9", namespace).spec.node_name,
        )
        assert scheduled() == []
        core.create_namespaced_pod(namespace, pod(1))
        wait_for(
            "both gang pods to be bound",
            lambda: len(scheduled()) == 2,
            state=lambda: str(scheduled()),
        )


RESTART_ON_FAILURE_ONLY = {
    "restartPolicy": "Never",
    "restartPolicyRules": [
        {"action": "Restart", "exitCodes": {"operator": "NotIn", "values": [0]}}
    ],
}


@pytest.mark.parametrize(
    ("pod_policy", "container_policy", "exit_code", "restarts"),
    [
        ("Never", {}, 3, False),
        ("Never", {}, 0, False),
        ("Always", {}, 7, True),
        # KEP-5307 rules: exit 0 means done even under restartPolicy Always ...
        ("Always", RESTART_ON_FAILURE_ONLY, 0, False),
        # ... any other code restarts the container.
        ("Always", RESTART_ON_FAILURE_ONLY, 5, True),
    ],
)
def test_kwok_container_exits_on_request(
    devcluster: DevCluster,
    namespace: str,
    pod_policy: str,
    container_policy: dict[str, Any],
    exit_code: int,
    restarts: bool,
) -> None:
    """ant.dev/test-exit: "CODE@SECONDS" makes kwok end the container as a kubelet would."""
    name = unique("exit")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"ant.dev/test-exit": f"{exit_code}@1"}},
        "spec": {
            "restartPolicy": pod_policy,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "train", "image": "train:latest", **container_policy}],
        },
    }
    with as_user(devcluster, "alice") as (core, _):
        core.create_namespaced_pod(namespace, pod)

        def status() -> Any:
            return core.read_namespaced_pod(name, namespace).status

        def ended() -> Any:
            s = status()
            if restarts:
                (c,) = s.container_statuses or [None]
                done = c is not None and c.restart_count >= 1 and c.state.running is not None
            else:
                done = s.phase in ("Succeeded", "Failed")
            return s if done else None

        what = "a restart" if restarts else "the pod to end"
        final = wait_for(what, ended, timeout=30, state=lambda: status().container_statuses)
        (container,) = final.container_statuses
        if restarts:
            assert final.phase == "Running"
            assert container.last_state.terminated.exit_code == exit_code
            assert container.ready
        else:
            assert final.phase == ("Succeeded" if exit_code == 0 else "Failed")
            assert container.state.terminated.exit_code == exit_code
            assert container.state.terminated.reason == ("Completed" if exit_code == 0 else "Error")
            assert container.restart_count == 0
            ready = {c.type: c.status for c in final.conditions}["Ready"]
            assert ready == "False"
