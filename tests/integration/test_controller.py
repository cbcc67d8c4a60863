"""Jobs that end (issue #12): the ant controller on the real dev cluster.

Containers "exit" through the dev cluster's kwok stage ``pod-container-exit``: a pod
annotated ``ant.dev/test-exit: "CODE@SECONDS"`` has its containers exit with CODE after
SECONDS, and restarted (or not) as a v1.37 kubelet would under the container's
``restartPolicy`` (docs/development.md). The annotation goes on the pod template (every
replica) through a job file's ``podTemplate``, or on one pod (one replica) with a patch.
The dev cluster runs one controller (devcluster/cluster.py); the failover test starts a
private cluster so that it owns both of the controllers it kills and watches.

Every command is the real CLI, in process, as alice; what happened is checked with an
independent client (the ``kubernetes`` package, as admin).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ant.errors import ExitCode
from tests.helpers import run_ant, unique, wait_for
from tests.integration.test_queueing import Ant, pods, tpu_holders

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("ant_priorities"),
    pytest.mark.timeout(300),
]

EXIT = "ant.dev/test-exit"


@pytest.fixture
def ant(devcluster: DevCluster, namespace: str, tmp_path: Path) -> Iterator[Ant]:
    from kubernetes import client

    yield Ant(devcluster, namespace, tmp_path)
    # Services are owned by their StatefulSets: they go with them.
    with devcluster.api_client("admin") as api:
        client.AppsV1Api(api).delete_collection_namespaced_stateful_set(namespace)
    wait_for(f"the pods in {namespace} to be gone", lambda: not pods(devcluster, namespace), 90)


def exiting(ant: Ant, name: str, exit: str | None, *flags: str) -> None:
    """Submit a job whose replicas exit as ``exit`` says (``CODE@SECONDS``; None: never)."""
    spec: dict[str, Any] = {"name": name, "image": "busybox:1.36", "command": ["train"]}
    if exit is not None:
        spec["podTemplate"] = {"metadata": {"annotations": {EXIT: exit}}}
    path = ant.cwd / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    ant.ok("submit", str(path), *flags)


def statefulset(ant: Ant, name: str) -> Any:
    from kubernetes import client

    with ant.devcluster.api_client("admin") as api:
        return client.AppsV1Api(api).read_namespaced_stateful_set(name, ant.namespace)


def annotations(ant: Ant, name: str) -> dict[str, str]:
    return dict(statefulset(ant, name).metadata.annotations or {})


def phase(ant: Ant, name: str) -> str:
    return str((statefulset(ant, name).metadata.labels or {}).get("ant.dev/phase", ""))


def shown(ant: Ant, name: str) -> dict[str, Any]:
    return dict(ant.ok("show", name, "-o", "json").json())


def make_exit(ant: Ant, pod: str, exit: str) -> None:
    """One replica exits: the annotation on its pod alone."""
    from kubernetes import client

    with ant.devcluster.api_client("admin") as api:
        client.CoreV1Api(api).patch_namespaced_pod(
            pod, ant.namespace, {"metadata": {"annotations": {EXIT: exit}}}
        )


def uids(ant: Ant, job: str) -> dict[str, str]:
    return {
        p.metadata.name: p.metadata.uid
        for p in pods(ant.devcluster, ant.namespace, f"ant.dev/job={job}")
    }


def all_running(ant: Ant, job: str, n: int) -> bool:
    found = pods(ant.devcluster, ant.namespace, f"ant.dev/job={job}")
    return len(found) == n and all(
        p.status.phase == "Running"
        and all(c.state.running for c in p.status.container_statuses or [])
        for p in found
    )


# ---- completion ---------------------------------------------------------------------------


def test_a_job_whose_replicas_all_exit_0_succeeds_and_its_capacity_goes_to_the_queue(
    ant: Ant,
) -> None:
    # The proof needs the whole pool (8 nodes of 4 TPUs; each replica below takes a node).
    wait_for(
        "the TPU pool to be free (another test still holds it?)",
        lambda: not tpu_holders(ant.devcluster),
        180,
        state=lambda: tpu_holders(ant.devcluster)[:3],
    )
    done, filler, waiting = unique("done"), unique("filler"), unique("opp")
    tpus = ("--replicas", "4", "--tpus", "4")
    exiting(ant, filler, None, *tpus)
    exiting(ant, done, "0@4", *tpus)
    wait_for("both jobs to run", lambda: all_running(ant, filler, 4) and all_running(ant, done, 4))
    ant.submit(waiting, *tpus, "--priority", "opportunistic")
    assert not any(
        p.spec.node_name for p in pods(ant.devcluster, ant.namespace, f"ant.dev/job={waiting}")
    )

    waited = ant("wait", done, "--for", "succeeded", "--timeout", "2m")
    assert waited.code == 0, str(waited)
    assert waited.out == f"job/{done} succeeded\n"
    sts = statefulset(ant, done)
    assert sts.metadata.labels["ant.dev/phase"] == "Succeeded"
    assert sts.spec.replicas == 0  # the accelerators go back to the queue
    record = shown(ant, done)
    assert record["status"] == "Succeeded"
    assert record["replicas"] == 4  # what it had, kept as the record
    assert [(e["replica"], e["exitCode"]) for e in record["exits"]] == [(i, 0) for i in range(4)]
    assert record["finishedAt"]
    assert record["restarts"] == 0
    wait_for(
        "the opportunistic job to run in the freed capacity",
        lambda: all_running(ant, waiting, 4),
        120,
    )

    listed = ant.ok("list", "-o", "json").json()["items"]
    # finished jobs come after the active ones
    assert [j["name"] for j in listed][-1] == done
    assert [
        j["name"] for j in ant.ok("list", "--status", "succeeded", "-o", "json").json()["items"]
    ] == [done]


def test_a_failing_replica_restarts_the_whole_job_then_fails_it_naming_the_replica(
    ant: Ant,
) -> None:
    job = unique("crash")
    exiting(ant, job, None, "--replicas", "4", "--max-restarts", "1")
    wait_for("the job to run", lambda: all_running(ant, job, 4))
    first = uids(ant, job)
    make_exit(ant, f"{job}-2", "3@1")

    def restarted() -> bool:
        now = uids(ant, job)
        return (
            annotations(ant, job).get("ant.dev/restarts") == "1"
            and len(now) == 4
            and not set(now.values()) & set(first.values())
            and all_running(ant, job, 4)
        )

    wait_for("every pod to be replaced once", restarted, 90, state=lambda: annotations(ant, job))
    (entry,) = shown(ant, job)["restartLog"]
    assert (entry["replica"], entry["exitCode"], entry["reason"]) == (
        2,
        3,
        "replica 2 exited with code 3",
    )
    assert ant("wait", job, "--for", "finished", "--timeout", "1s").code == ExitCode.TIMEOUT

    make_exit(ant, f"{job}-2", "3@1")  # the restarts are spent: this one fails the job
    waited = ant("wait", job, "--for", "succeeded", "--timeout", "2m")
    assert waited.code == ExitCode.JOB_FAILED, str(waited)
    failure = "replica 2 exited with code 3 (restarts exhausted: 1 of 1)"
    assert failure in waited.err
    record = shown(ant, job)
    assert (record["status"], record["failure"], record["failedReplica"]) == ("Failed", failure, 2)
    assert {e["replica"]: e["exitCode"] for e in record["exits"]}[2] == 3
    assert record["restarts"] == 1
    wait_for("its pods to go (scaled to 0)", lambda: not uids(ant, job), 60)
    logs = ant("logs", job, "--previous")
    assert logs.code == ExitCode.NOT_FOUND
    assert f"job {job} is Failed: its pods, and their logs, are gone" in logs.err
    assert annotations(ant, job)["ant.dev/failed-replica"] == "2"
    assert [
        j["name"] for j in ant.ok("list", "--status", "Failed", "-o", "json").json()["items"]
    ] == [job]


def test_on_failure_restart_replica_replaces_only_the_failed_replica(ant: Ant) -> None:
    job = unique("replica")
    exiting(ant, job, None, "--replicas", "3", "--on-failure", "restart-replica")
    wait_for("the job to run", lambda: all_running(ant, job, 3))
    first = uids(ant, job)
    make_exit(ant, f"{job}-1", "4@1")

    def replaced_alone() -> bool:
        now = uids(ant, job)
        return (
            annotations(ant, job).get("ant.dev/restarts") == "1"
            and len(now) == 3
            and now[f"{job}-1"] != first[f"{job}-1"]
            and all_running(ant, job, 3)
        )

    wait_for("replica 1 to be replaced", replaced_alone, 90, state=lambda: uids(ant, job))
    now = uids(ant, job)
    assert {p: now[p] for p in (f"{job}-0", f"{job}-2")} == {
        p: first[p] for p in (f"{job}-0", f"{job}-2")
    }  # the others kept running
    (entry,) = shown(ant, job)["restartLog"]
    assert (entry["replica"], entry["exitCode"]) == (1, 4)
    assert shown(ant, job)["status"] == "Running"


# ---- dependencies -------------------------------------------------------------------------


def test_after_chains_run_in_order_and_a_failed_dependency_fails_its_dependant(
    ant: Ant,
) -> None:
    a, b, c = unique("a"), unique("b"), unique("c")
    exiting(ant, a, "0@3", "--replicas", "2")
    exiting(ant, b, "0@1", "--after", a)
    exiting(ant, c, "0@1", "--after", b)
    wait_for(f"{b}'s pod to exist", lambda: pods(ant.devcluster, ant.namespace, f"ant.dev/job={b}"))
    gated = pods(ant.devcluster, ant.namespace, f"ant.dev/job={b}")
    assert [g.name for g in gated[0].spec.scheduling_gates] == ["ant.dev/after"]
    assert not gated[0].spec.node_name

    waited = ant("wait", a, b, c, "--for", "succeeded", "--timeout", "2m")
    assert waited.code == 0, str(waited)
    finished = [annotations(ant, j)["ant.dev/finished-at"] for j in (a, b, c)]
    released = [annotations(ant, j)["ant.dev/released-at"] for j in (b, c)]
    assert finished == sorted(finished)
    assert finished[0] <= released[0] <= finished[1] <= released[1] <= finished[2]
    assert shown(ant, c)["after"] == [b]

    bad, dependant = unique("bad"), unique("dep")
    exiting(ant, bad, "5@1", "--on-failure", "fail")
    exiting(ant, dependant, "0@1", "--after", bad)
    waited = ant("wait", dependant, "--for", "finished", "--timeout", "2m")
    assert waited.code == ExitCode.JOB_FAILED, str(waited)
    assert phase(ant, dependant) == "Failed"
    assert annotations(ant, dependant)["ant.dev/failure"] == f"dependency {bad} failed"
    # its pods never ran
    assert not uids(ant, dependant)


def test_after_a_missing_job_is_refused_and_wait_knows_unknown_jobs(ant: Ant) -> None:
    missing = unique("nope")
    submitted = ant("submit", "--name", unique("x"), "--image", "busybox:1.36", "--after", missing)
    assert submitted.code == ExitCode.NOT_FOUND
    assert f"--after: job {missing} not found" in submitted.err
    assert ant("wait", missing).code == ExitCode.NOT_FOUND


# ---- retention ----------------------------------------------------------------------------


def test_a_finished_job_is_deleted_when_its_ttl_is_up(ant: Ant) -> None:
    from kubernetes import client

    job = unique("ttl")
    exiting(ant, job, "0@1", "--ttl", "3s")
    assert ant("wait", job, "--timeout", "2m").code == 0

    def gone() -> bool:
        with ant.devcluster.api_client("admin") as api:
            names = {
                s.metadata.name
                for s in client.AppsV1Api(api).list_namespaced_stateful_set(ant.namespace).items
            }
            services = {
                s.metadata.name
                for s in client.CoreV1Api(api).list_namespaced_service(ant.namespace).items
            }
        return job not in names and job not in services

    wait_for("the controller to delete the job after its TTL", gone, 60)


# ---- leader failover ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_base(span: int = 7) -> int:
    """A block of loopback ports below the ephemeral range that nothing listens on."""
    for base in range(21443, 26000, 200):
        busy = False
        for port in range(base, base + span):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    busy = True
                    break
        if not busy:
            return base
    pytest.skip("no free block of ports for a private dev cluster")


def test_a_leader_killed_mid_transition_hands_over_and_no_transition_is_lost_or_repeated(
    tmp_path: Path, cluster_script: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """Two controllers on a private cluster; the leader hangs right after recording a
    restart (before deleting the pods) and is killed with SIGKILL there."""
    from kubernetes import client, config

    state = tmp_path / "state"
    private = {
        "ANT_DEVCLUSTER_STATE": str(state),
        "ANT_DEVCLUSTER_PORT_BASE": str(free_port_base()),
    }
    # the cluster's own controller (started first, so the leader) hangs mid-restart
    up = cluster_script("up", env={**private, "ANT_CONTROLLER_PAUSE_AFTER": "restart-job"})
    assert up.returncode == 0, up.stderr
    standby: subprocess.Popen[bytes] | None = None
    try:
        leader = json.loads((state / "cluster.json").read_text())["components"]["ant-controller"]
        kubeconfig = str(state / "kubeconfig")
        with open(tmp_path / "standby.log", "wb") as log:
            standby = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ant",
                    f"--kubeconfig={state / 'config' / 'ant-controller.kubeconfig'}",
                    "controller",
                    "run",
                    "--plain-http",
                    f"--listen=127.0.0.1:{free_port()}",
                    "--lease-duration=4",
                    "--renew-deadline=3",
                    "--retry-period=1",
                ],
                env={**os.environ, **private},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def cli(*argv: str, user: str = "alice") -> Any:
            full = ["--kubeconfig", kubeconfig, "--context", user, "-n", "research", *argv]
            result = run_ant(full, vars={"USER": "nobody"}, cwd=tmp_path)
            assert result.code == 0, str(result)
            return result

        cli("admin", "install-priorities", user="admin")
        job = unique("failover")
        cli("submit", "--name", job, "--image", "busybox:1.36", "--replicas", "3")
        api = config.new_client_from_config(kubeconfig, context="admin")
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

        def live() -> dict[str, str]:
            found = core.list_namespaced_pod("research", label_selector=f"ant.dev/job={job}")
            return {
                p.metadata.uid: p.status.phase
                for p in found.items
                if not p.metadata.deletion_timestamp
            }

        def job_annotations() -> dict[str, str]:
            return dict(apps.read_namespaced_stateful_set(job, "research").metadata.annotations)

        wait_for("the job to run", lambda: list(live().values()) == ["Running"] * 3, 90)
        first = set(live())
        core.patch_namespaced_pod(
            f"{job}-1", "research", {"metadata": {"annotations": {EXIT: "4@1"}}}
        )
        # mid-transition: the restart is recorded, and its pods are not deleted
        recorded = wait_for(
            "the leader to record the restart",
            lambda: (a := job_annotations()).get("ant.dev/restarts") == "1" and a,
            90,
        )
        assert set(json.loads(recorded["ant.dev/replaced-pods"])) == first
        assert set(live()) == first
        os.kill(leader["pid"], signal.SIGKILL)

        wait_for(
            "the stand-by to take over and finish the restart",
            lambda: len(live()) == 3 and not set(live()) & first,
            60,
            state=live,
        )
        after = job_annotations()
        assert after["ant.dev/restarts"] == "1"  # neither lost nor made twice
        assert len(json.loads(after["ant.dev/restart-log"])) == 1
        lease = client.CoordinationV1Api(api).read_namespaced_lease("ant-controller", "ant-system")
        assert lease.spec.lease_transitions >= 1
        api.close()
    finally:
        if standby is not None:
            standby.terminate()
            standby.wait(15)
        cluster_script("down", env=private, timeout=120)
