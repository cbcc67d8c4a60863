"""A researcher's day without kubectl (issue 13): alice and bob share `research`.

Each test runs the real CLI in-process as one of the dev cluster's users and waits on
the very condition it asserts.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ant.errors import ExitCode
from tests.conftest import DevCluster
from tests.helpers import Result, run_ant, unique, wait_for, what_ant_writes

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

RESEARCH = "research"


@dataclass
class Ant:
    devcluster: DevCluster
    created: list[tuple[str, str]] = field(default_factory=list)

    def __call__(
        self,
        *argv: str,
        user: str = "alice",
        vars: dict[str, str] | None = None,
        stdin: io.StringIO | None = None,
    ) -> Result:
        args = ["--kubeconfig", str(self.devcluster.kubeconfig), "--context", user]
        return run_ant([*args, *argv], vars=vars, stdin=stdin)

    def ok(self, *argv: str, **kwargs: Any) -> Result:
        result = self(*argv, **kwargs)
        assert result.code == 0, str(result)
        return result

    def submit(self, name: str, *flags: str, user: str, namespace: str = RESEARCH) -> None:
        self.created.append((namespace, name))
        self.ok(
            "submit", "-n", namespace, "--name", name, "--image", "busybox:1.36", *flags, user=user
        )


@pytest.fixture
def ant(devcluster: DevCluster) -> Iterator[Ant]:
    runner = Ant(devcluster)
    yield runner
    for namespace, name in runner.created:
        runner("delete", "-n", namespace, name, "--yes", "--force", user="admin")


def pods(devcluster: DevCluster, namespace: str, job: str) -> dict[str, Any]:
    """The job's pods by name, as the admin sees them."""
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        found = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"ant.dev/job={job}"
        )
    return {p.metadata.name: p for p in found.items}


def running(devcluster: DevCluster, namespace: str, job: str, replicas: int) -> dict[str, Any]:
    """The job's pods once all ``replicas`` are Running (else empty)."""
    found = pods(devcluster, namespace, job)
    ok = len(found) == replicas and all(p.status.phase == "Running" for p in found.values())
    return found if ok else {}


def statefulset(devcluster: DevCluster, namespace: str, name: str) -> Any:
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        return client.AppsV1Api(api).read_namespaced_stateful_set(name, namespace)


# ---- 1. safe by default ----------------------------------------------------------------------
def test_alice_cannot_change_bobs_job_without_force(ant: Ant, devcluster: DevCluster) -> None:
    job = unique("bobs")
    ant.submit(job, "--replicas", "2", user="bob")
    before = wait_for(f"{job} running", lambda: running(devcluster, RESEARCH, job, 2))
    written = what_ant_writes(statefulset(devcluster, RESEARCH, job))
    refusal = (
        f"ant: error: job {job} in research belongs to bob, not to you (alice) "
        "(--force acts on it anyway)"
    )
    for argv in (
        ["restart", job, "-r", "0"],
        ["restart", job, "--yes"],
        ["delete", job, "--yes"],
        ["update", job, "--image", "busybox:1.37"],
        ["rollback", job],
        ["rollout", job, "--yes"],
        ["exec", job, "--", "true"],
    ):
        result = ant("-n", RESEARCH, *argv)
        assert (result.code, result.err_lines) == (ExitCode.NOT_OWNER, [refusal]), str(result)

    # Nothing was written: the same spec, labels and annotations, the same pods. (Not the
    # same resourceVersion: the StatefulSet controller may still be updating its status.)
    assert what_ant_writes(statefulset(devcluster, RESEARCH, job)) == written
    assert {n: p.metadata.uid for n, p in pods(devcluster, RESEARCH, job).items()} == {
        n: p.metadata.uid for n, p in before.items()
    }
    # alice's own selection never picks bob's job.
    mine = ant("-n", RESEARCH, "delete", "-l", f"ant.dev/job={job}", "--yes")
    assert mine.code == 0, str(mine)
    assert "no matching jobs" in mine.err

    # A prompt names the owner (without a terminal it is the refusal to guess).
    asked = ant("-n", RESEARCH, "restart", job, "--force")
    assert asked.code == ExitCode.USAGE
    assert f"Restart all 2 replicas of {job} (bob's job): needs confirmation" in asked.err

    # --force acts, and says whose job it was in the prompt it skipped.
    ant.ok("-n", RESEARCH, "restart", job, "-r", "0", "--force")
    wait_for(
        f"{job}-0 replaced",
        lambda: (
            (p := pods(devcluster, RESEARCH, job).get(f"{job}-0")) is not None
            and p.metadata.uid != before[f"{job}-0"].metadata.uid
        ),
    )
    # bob's own commands are unaffected.
    ant.ok("-n", RESEARCH, "update", job, "--image", "busybox:1.37", user="bob")
    # Selecting everyone's jobs with --all-users names the owner in the prompt.
    selected = ant("-n", RESEARCH, "delete", "-l", f"ant.dev/job={job}", "--all-users")
    assert selected.code == ExitCode.USAGE
    assert f"Delete 1 job(s) in research ({job} (bob's)): needs confirmation" in selected.err
    deleted = ant.ok("-n", RESEARCH, "delete", job, "--force", "--yes")
    assert deleted.out == f"job/{job} deleted\n"


# ---- 3. an honest ant show ---------------------------------------------------------------------
def test_show_says_what_runs_now_not_what_was_submitted(ant: Ant, devcluster: DevCluster) -> None:
    from tests.integration.test_cli_jobs import check_schema

    job = unique("honest")
    ant.submit(
        job,
        "--replicas", "2",
        "--resource", "cpu=1",
        "--env", "LR=3e-4",
        "--secret-env", "WANDB_API_KEY=wandb:api-key",
        "--secret-mount", "wandb:/etc/wandb",
        "--", "sh", "-c", "sleep 3600",
        user="alice",
    )  # fmt: skip
    wait_for(f"{job} running", lambda: running(devcluster, RESEARCH, job, 2))
    ant.ok("-n", RESEARCH, "update", job, "--image", "busybox:1.37")

    text = ant.ok("-n", RESEARCH, "show", job).out
    assert (
        "    Image:    busybox:1.37\n              replica(s) 0, 1 still run busybox:1.36\n" in text
    )
    assert "    Command:  sh -c 'sleep 3600'\n" in text
    assert "    Requests: cpu=1\n" in text
    assert "WANDB_API_KEY from secretKeyRef wandb/api-key" in text
    assert "    secret-wandb: secret wandb\n" in text
    assert re.search(r"^Created: +20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \(", text, re.M), text
    assert re.search(rf"^Revision: +0/2 on {job}-\w+ \(current revision {job}-\w+\)$", text, re.M)
    # The submit-time command line is provenance: it still names the old image.
    assert "--image busybox:1.36" in text

    doc = ant.ok("-n", RESEARCH, "show", job, "-o", "json").json()
    check_schema(doc, "Job")
    (main,) = doc["containers"]
    assert (main["name"], main["image"], main["requests"]) == ("main", "busybox:1.37", {"cpu": "1"})
    env = {e["name"]: e for e in main["env"]}
    assert env["LR"] == {"name": "LR", "value": "3e-4", "valueFrom": None}
    assert env["WANDB_API_KEY"] == {
        "name": "WANDB_API_KEY",
        "value": None,
        "valueFrom": "secretKeyRef wandb/api-key",
    }
    assert {"name": "secret-wandb", "kind": "secret", "source": "wandb"} in doc["volumes"]
    assert [p["images"] for p in doc["pods"]] == [{"main": "busybox:1.36"}] * 2
    assert doc["currentRevision"] != doc["updateRevision"]

    # Replace replica 0: show follows the pods, not the submit.
    ant.ok("-n", RESEARCH, "rollout", job, "--replicas", "0", "--yes")
    doc = ant.ok("-n", RESEARCH, "show", job, "-o", "json").json()
    assert [p["images"]["main"] for p in doc["pods"]] == ["busybox:1.37", "busybox:1.36"]
    text = ant.ok("-n", RESEARCH, "show", job).out
    assert "replica(s) 1 still run busybox:1.36" in text
    assert {p["node"] for p in doc["pods"]} <= {
        f"tpu-node-{i}" for i in range(devcluster.node_count)
    }


# ---- 5. free capacity is the cluster's -------------------------------------------------------
TPU = "google.com/tpu"


def tpus_held(devcluster: DevCluster) -> int:
    """What every pod bound to a Ready node requests of TPUs, as the admin counts it."""
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        ready = {
            n.metadata.name
            for n in core.list_node().items
            if not n.spec.unschedulable
            and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
        }
        pods = core.list_pod_for_all_namespaces(
            field_selector="spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
        ).items
    return sum(
        int((c.resources.requests or {}).get(TPU, 0))
        for p in pods
        if p.spec.node_name in ready
        for c in p.spec.containers
    )


def test_free_capacity_is_the_clusters_or_ant_says_it_does_not_know(
    ant: Ant, devcluster: DevCluster
) -> None:
    job = unique("holds")
    ant.submit(job, "--tpus", "1", user="alice")  # in research, not in bob-private
    wait_for("some TPUs held outside bob-private", lambda: tpus_held(devcluster) > 0)

    def admins_view() -> dict[str, Any] | None:
        before = tpus_held(devcluster)
        doc = ant.ok("-n", "bob-private", "queue", "-o", "json", user="admin").json()
        settled = before == tpus_held(devcluster) == doc["clusterRequested"][TPU]
        return doc if settled else None

    # The admin may list every pod: bob-private's queue counts research's pods too.
    doc = wait_for("ant's count to match the cluster's", admins_view)
    assert doc["capacitySource"] == "cluster"
    (capacity,) = doc["capacity"]
    assert capacity["requestedByRunning"] == 0  # nothing of bob-private's runs
    assert capacity["free"] < capacity["allocatable"]

    # bob may list nodes but not every pod, and no cache serves totals: ant says so.
    mine = ant.ok("-n", "bob-private", "queue", "-o", "json", user="bob").json()
    assert (mine["capacitySource"], mine["clusterRequested"]) == (None, None)
    assert mine["capacity"][0]["free"] is None
    text = ant.ok("-n", "bob-private", "queue", user="bob").out
    assert re.search(
        rf"^{TPU}: free unknown \(you may not list pods in every namespace, and no ant cache "
        r"serves node totals\); at most \d+$",
        text,
        re.M,
    ), text


# ---- 4. -A for a researcher ------------------------------------------------------------------
def test_all_namespaces_for_a_researcher_lists_where_they_may_and_says_what_it_skipped(
    ant: Ant,
) -> None:
    here, queued, private = unique("here"), unique("queued"), unique("private")
    ant.submit(here, user="alice")
    ant.submit(queued, user="alice", namespace="queued")
    ant.submit(private, user="bob", namespace="bob-private")

    listed = ant.ok("list", "-A", "--all-users", "-o", "json")
    names = {(i["namespace"], i["name"]) for i in listed.json()["items"]}
    assert {("research", here), ("queued", queued)} <= names
    assert not any(name == private for _, name in names)
    (skipped,) = [line for line in listed.err_lines if line.startswith("skipped ")]
    assert skipped.startswith("skipped ")
    assert "namespace(s) where you may not list jobs: " in skipped
    assert "bob-private" in skipped.split(": ", 1)[1].split(", ")

    # Her own jobs by default, with the NAMESPACE column.
    table = ant.ok("list", "-A").out.splitlines()
    assert table[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert {tuple(line.split()[:2]) for line in table[1:]} >= {
        ("research", here),
        ("queued", queued),
    }
    # bob may read bob-private: his -A includes it.
    bobs = ant.ok("list", "-A", "--all-users", "-o", "name", user="bob").out.split()
    assert private in bobs

    # The queue too.
    waiting = ant.ok("queue", "-A", "--all-users", "-o", "json")
    assert waiting.json()["namespace"] is None
    assert any("bob-private" in line for line in waiting.err_lines if line.startswith("skipped"))

    # carol may not list namespaces: the namespaces of the kubeconfig's contexts are tried.
    carols = ant("list", "-A", "--all-users", "-o", "name", user="carol-cert")
    assert carols.code == 0, str(carols)
    assert here in carols.out.split()
    assert carols.err_lines == ["skipped 1 namespace(s) where you may not list jobs: default"], (
        carols.err
    )


# ---- 7. the config file ----------------------------------------------------------------------
def test_the_config_file_gives_defaults_below_flags_and_variables(
    ant: Ant, devcluster: DevCluster, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    vars = {"ANT_CONFIG": str(config)}
    job = unique("configured")
    ant.ok("config", "set", "image", "busybox:1.36", vars=vars)
    ant.ok("config", "set", "contexts.alice.namespace", "queued", vars=vars)
    ant.ok("config", "set", "resources.cpu", "100m", vars=vars)
    ant.created.append(("queued", job))
    ant.ok("submit", "--name", job, "--", "sleep", "3600", vars=vars)  # no -n, no --image
    sts = statefulset(devcluster, "queued", job)
    (main,) = sts.spec.template.spec.containers
    assert (main.image, main.resources.requests) == ("busybox:1.36", {"cpu": "100m"})
    assert job in ant.ok("list", "-o", "name", vars=vars).out.split()
    # A variable beats the file, a flag beats both.
    research = ant.ok("list", "-o", "json", vars={**vars, "ANT_NAMESPACE": "research"}).json()
    assert all(i["namespace"] == "research" for i in research["items"])
    flagged = ant.ok("list", "-n", "research", "-o", "name", vars=vars).out.split()
    assert job not in flagged
    # bob has no section: the kubeconfig's namespace for him.
    assert ant("list", "-o", "name", user="bob", vars=vars).code == 0
    bad = ant("list", vars={"ANT_CONFIG": str(tmp_path / "bad.yaml")})
    assert bad.code == 0  # no file: ant's own defaults
    (tmp_path / "bad.yaml").write_text("contexts: {alice: {namspace: x}}\n")
    bad = ant("list", vars={"ANT_CONFIG": str(tmp_path / "bad.yaml")})
    assert (bad.code, bad.err_lines) == (
        ExitCode.USAGE,
        [
            f"ant: error: {tmp_path / 'bad.yaml'}: contexts.alice.namspace: unknown key "
            "(did you mean namespace?)"
        ],
    )


# ---- 2. restart keeps the slot, or says it may not -------------------------------------------
def test_restart_on_a_full_pool_says_the_replica_may_lose_its_slot(
    tmp_path: Path, cluster_script: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """A private one-node cluster (4 TPUs): alice's job holds them, bob's waits with the same
    priority. Restarting alice's replica would hand the TPUs to bob's pod: ant says so."""
    from tests.integration.test_into_a_job import free_port_base

    private = {
        "ANT_DEVCLUSTER_STATE": str(tmp_path / "state"),
        "ANT_DEVCLUSTER_PORT_BASE": str(free_port_base()),
        "ANT_DEVCLUSTER_NODES": "1",
    }
    up = cluster_script("up", env=private)
    try:
        assert up.returncode == 0, up.stderr
        kubeconfig = up.stdout.strip()

        def ant(user: str, *argv: str, stdin: io.StringIO | None = None) -> Result:
            return run_ant(["--kubeconfig", kubeconfig, "--context", user, *argv], stdin=stdin)

        assert ant("admin", "admin", "install-priorities").code == 0
        for user, job in (("alice", "holds"), ("bob", "waits")):
            done = ant(user, "submit", "--name", job, "--image", "busybox", "--tpus", "4")
            assert done.code == 0, str(done)
            running = ant(user, "wait", job, "--for", "running", "--timeout", "60s")
            if job == "holds":
                assert running.code == 0, str(running)

        def bob_waits() -> bool:
            shown = ant("bob", "show", "waits", "-o", "json").json()
            return any(p["reason"] == "Unschedulable" for p in shown["pods"])

        wait_for("bob's pod to find no room", bob_waits)
        # Without a terminal and without --yes: said, and refused; nothing deleted.
        asked = ant("alice", "restart", "holds", "-r", "0")
        assert asked.code == ExitCode.USAGE, str(asked)
        assert asked.err_lines == [
            "ant: warning: the pool has no room of this size: 1 pod(s) of equal or higher "
            "priority wait in this namespace (others are not visible to you), first "
            "research/waits-0 (priority 10000): the restarted replica may lose its slot to "
            "them and wait Pending",
            "ant: error: Restart anyway: needs confirmation (pass --yes to confirm in scripts)",
        ]
        assert ant("alice", "show", "holds", "-o", "json").json()["ready"] == 1
        # The Python API keeps the same rule: it refuses, naming who waits, and deletes nothing.
        import ant as antlib
        from ant.errors import SlotAtRisk

        client = antlib.Client("alice", kubeconfig=kubeconfig)
        before = client.get("holds").pods[0].uid
        with pytest.raises(SlotAtRisk, match=re.escape("first research/waits-0 (priority 10000)")):
            client.restart("holds", [0])
        assert client.get("holds", fresh=True).pods[0].uid == before
        # --yes --wait: bob's older pod takes the TPUs; alice's replica is Pending, and told.
        lost = ant("alice", "restart", "holds", "-r", "0", "--yes", "--wait", "--timeout", "60s")
        assert lost.code == ExitCode.ERROR, str(lost)
        assert lost.out == "pod/holds-0 deleted\n"
        assert lost.err_lines[-1].startswith(
            "ant: error: pod/holds-0 lost its slot and is Pending: 0/1 nodes are available"
        ), lost.err
        wait_for("bob's job running", lambda: ant("bob", "show", "waits", "-o", "json").json()[
            "ready"
        ] == 1)  # fmt: skip
    finally:
        cluster_script("down", env=private, timeout=120)


def test_the_cache_serves_node_totals_to_who_may_list_nodes(
    ant: Ant, devcluster: DevCluster, tmp_path: Path
) -> None:
    """A cache watching every namespace (run as admin) tells bob what is free, from node
    totals alone: no pod of another namespace is named to him."""
    import signal
    import sys

    import requests

    from tests.integration.test_cache import _free_port

    port = _free_port()
    certs = tmp_path / "certs"
    argv = [
        sys.executable, "-m", "ant", "--kubeconfig", str(devcluster.kubeconfig),
        "--context", "admin", "cache", "serve", "--listen", f"127.0.0.1:{port}",
        "--cert-dir", str(certs),
    ]  # fmt: skip
    log = (tmp_path / "cache.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1",
    })  # fmt: skip
    url = f"https://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "cache.log").read_text()
        try:
            return requests.get(f"{url}/readyz", verify=str(certs / "ant-cache.crt"), timeout=5).ok
        except (requests.RequestException, OSError):
            return False

    try:
        wait_for("the cache to be ready", ready, 90)
        vars = {"ANT_CACHE_CA": str(certs / "ant-cache.crt")}
        doc = ant.ok(
            "--cache", url, "-n", "bob-private", "queue", "-o", "json", user="bob", vars=vars
        ).json()
        assert doc["capacitySource"] == "cache", doc
        assert doc["clusterRequested"] is not None
        assert doc["capacity"][0]["free"] is not None
        # carol may not list nodes: no capacity for her, from the cache or anywhere.
        carol = ant.ok("--cache", url, "queue", "-o", "json", user="carol-cert", vars=vars)
        assert carol.json()["capacitySource"] is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


# ---- 8. habits from other tools --------------------------------------------------------------
def test_habits_from_other_tools_get_a_hint_and_change_nothing(
    ant: Ant, devcluster: DevCluster
) -> None:
    from kubernetes import client

    job = unique("habit")
    for argv, line in [
        (
            ["cancel", job],
            "ant has no 'cancel' command: 'ant delete JOB' stops a job and removes it",
        ),
        (
            ["status"],
            "ant has no 'status' command: 'ant list' shows your jobs, 'ant show JOB' one of them",
        ),
        (
            ["submit", "--name", job, "--image", "busybox", "python", "train.py"],
            "'python train.py' looks like the job's command: put it after '--' "
            "(ant submit [OPTIONS] -- python train.py)",
        ),
    ]:
        result = ant("-n", RESEARCH, *argv)
        assert (result.code, result.err_lines) == (ExitCode.USAGE, [f"ant: error: {line}"])
    with devcluster.api_client("admin") as api:
        names = client.AppsV1Api(api).list_namespaced_stateful_set(RESEARCH).items
    assert job not in {s.metadata.name for s in names}
