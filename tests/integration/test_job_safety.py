"""Faults found by trying to break ant (issue 14), against the dev cluster.

What exists is checked with an independent client (the ``kubernetes`` package, as admin).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from ant.errors import ExitCode
from tests.helpers import wait_for
from tests.integration.test_cli_jobs import Ant, ant, exists, k8s

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]
__all__ = ["ant"]  # the fixture, used by name


# ---- names never become paths --------------------------------------------------------------
def test_a_path_as_a_job_name_deletes_nothing(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    core, _, api = k8s(devcluster)
    with api:
        core.create_namespaced_service(
            namespace, {"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}}
        )
        trick = f"../../../../api/v1/namespaces/{namespace}/services/x"
        result = ant("delete", "-n", namespace, "--yes", trick, user="admin")
        assert result.code == ExitCode.USAGE, result
        assert "job name" in result.err  # one line saying the name is not one
        assert exists(lambda: core.read_namespaced_service("x", namespace))

        result = ant("logs", "-n", namespace, "../../etc", user="admin")
        assert result.code == ExitCode.USAGE, result
        assert result.out == ""


def test_an_invalid_namespace_is_a_usage_error_not_unauthorized(ant: Ant) -> None:
    result = ant("list", "-n", "../kube-system")
    assert result.code == ExitCode.USAGE, result
    assert result.err_lines == [
        "ant: error: --namespace: '../kube-system' is not a valid namespace (at most 63 "
        "lowercase letters, digits and '-', starting and ending alphanumeric)"
    ]


# ---- one unit: the StatefulSet owns the rest ---------------------------------------------
def services_and_statefulsets(
    devcluster: DevCluster, namespace: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Name -> object of every Service and StatefulSet in the namespace, as admin."""
    core, apps, api = k8s(devcluster)
    with api:
        services = {s.metadata.name: s for s in core.list_namespaced_service(namespace).items}
        stses = {s.metadata.name: s for s in apps.list_namespaced_stateful_set(namespace).items}
    return services, stses


def no_objects_left(devcluster: DevCluster, namespace: str) -> bool:
    services, stses = services_and_statefulsets(devcluster, namespace)
    return not services and not stses


def test_the_service_is_owned_by_the_statefulset_and_collected_with_it(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    ant.submit(namespace, "owned")
    services, stses = services_and_statefulsets(devcluster, namespace)
    (owner,) = services["owned"].metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (
        "StatefulSet",
        "owned",
        stses["owned"].metadata.uid,
    )

    # The headless Service still gives every pod its DNS name: the EndpointSlice that
    # cluster DNS serves lists the pod under its hostname.
    def endpoint_hostnames() -> set[str]:
        from kubernetes import client

        with devcluster.api_client("admin") as api:
            slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
                namespace, label_selector="kubernetes.io/service-name=owned"
            )
        return {e.hostname for s in slices.items for e in s.endpoints or []}

    wait_for("the pod in the Service's EndpointSlice", lambda: "owned-0" in endpoint_hostnames())

    # Deleting the root alone (as kubectl would) takes the Service with it.
    _, apps, api = k8s(devcluster)
    with api:
        apps.delete_namespaced_stateful_set("owned", namespace, propagation_policy="Background")
    wait_for(
        "the garbage collector to remove the Service",
        lambda: no_objects_left(devcluster, namespace),
    )


def statefulset_only(ant: Ant, namespace: str, name: str) -> None:
    """What a submit killed between its creates leaves: the root alone, still marked as
    waiting for its Service (built and created as ``submission.submit`` does, as alice)."""
    from ant.jobs import manifest, submission
    from ant.jobs.identity import Identity
    from ant.jobs.spec import JobSpec
    from ant.kube import resources as r
    from ant.kube.client import connect

    spec = JobSpec(name=name, image="busybox:1.36")
    provenance = manifest.Provenance(Identity("alice"), "2026-12-01T00:00:00Z", "ant submit")
    manifests = manifest.build(spec, name, namespace, provenance)
    _, statefulset = submission.to_messages(manifests)
    statefulset.metadata.annotations["ant.dev/service-pending"] = "true"
    client = connect(str(ant.devcluster.kubeconfig), "alice")
    try:
        client.create(r.STATEFULSETS, statefulset, namespace)
    finally:
        client.transport.close()


def test_a_half_created_job_is_incomplete_reported_and_deletable(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    statefulset_only(ant, namespace, "half")
    listed = ant.ok("list", "-n", namespace, "-o", "json").json()["items"]
    assert [(j["name"], j["status"]) for j in listed] == [("half", "Incomplete")]
    assert ant.ok("show", "half", "-n", namespace, "-o", "json").json()["status"] == "Incomplete"

    again = ant("submit", "-n", namespace, "--name", "half", "--image", "busybox:1.36")
    assert again.code == ExitCode.CONFLICT, again
    assert again.err_lines == [
        f"ant: error: job half already exists in namespace {namespace}, incomplete: its "
        "submit was interrupted ('ant delete half' removes it; then submit again)"
    ]
    ant.ok("delete", "-n", namespace, "half", "--yes")
    wait_for("nothing left of the job", lambda: no_objects_left(devcluster, namespace))


def test_a_service_left_without_its_statefulset_is_deleted_or_replaced(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    """What an older ant (Service first) left after an interruption."""
    core, _, api = k8s(devcluster)

    def leftover(name: str) -> None:
        labels = {"ant.dev/managed-by": "ant", "ant.dev/job": name, "ant.dev/created-by": "alice"}
        with api:
            core.create_namespaced_service(
                namespace,
                {"metadata": {"name": name, "labels": labels}, "spec": {"clusterIP": "None"}},
            )

    leftover("lone")
    deleted = ant.ok("delete", "-n", namespace, "lone", "--yes")
    assert deleted.out == "job/lone deleted\n"
    assert not exists(lambda: core.read_namespaced_service("lone", namespace))
    assert ant("delete", "-n", namespace, "lone", "--yes").code == ExitCode.NOT_FOUND

    leftover("reused")
    ant.submit(namespace, "reused")
    services, stses = services_and_statefulsets(devcluster, namespace)
    (owner,) = services["reused"].metadata.owner_references
    assert owner.uid == stses["reused"].metadata.uid
    ant.ok("delete", "-n", namespace, "reused", "--yes")
    wait_for("nothing left of the job", lambda: no_objects_left(devcluster, namespace))


def test_a_killed_sweep_leaves_nothing_that_delete_sweep_cannot_remove(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    """SIGKILL `submit --count` once its first StatefulSet exists; then clean up with ant."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANT_")}
    argv = [sys.executable, "-m", "ant", "--kubeconfig", str(devcluster.kubeconfig)]
    argv += ["--context", "alice", "-n", namespace, "submit", "--name", "k"]
    proc = subprocess.Popen(
        [*argv, "--image", "busybox:1.36", "--count", "40"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first = wait_for(
            "the sweep's first StatefulSet",
            lambda: next(iter(services_and_statefulsets(devcluster, namespace)[1].values()), None),
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sweep_id = first.metadata.labels["ant.dev/sweep"]
    services, stses = services_and_statefulsets(devcluster, namespace)
    assert set(services) <= set(stses)  # never a Service without its StatefulSet
    listed = ant.ok("list", "-n", namespace, "--sweep", sweep_id, "-o", "json").json()["items"]
    assert {j["name"] for j in listed} == set(stses)

    ant.ok("delete", "-n", namespace, "--sweep", sweep_id, "--yes")
    wait_for("no orphans", lambda: no_objects_left(devcluster, namespace))


# ---- insecure-skip-tls-verify: one warning per command --------------------------------------
def test_insecure_skip_tls_verify_warns_once_per_command(
    devcluster: DevCluster, namespace: str, tmp_path: Any
) -> None:
    import yaml

    config = yaml.safe_load(devcluster.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"]["insecure-skip-tls-verify"] = True
    insecure = tmp_path / "insecure-kubeconfig"
    insecure.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANT_")}
    # list makes several requests (who am I, StatefulSets, ...): still one warning.
    argv = [sys.executable, "-m", "ant", "--kubeconfig", str(insecure), "--context", "alice"]
    proc = subprocess.run(
        [*argv, "list", "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"ant: warning: not verifying the TLS certificate of {devcluster.server} "
        "(insecure-skip-tls-verify in the kubeconfig)"
    ]
