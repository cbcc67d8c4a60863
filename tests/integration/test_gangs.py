"""Gangs (issue 11): a job's replicas are admitted together or not at all.

The deadlock case: 8 hosts of 4 TPUs, two 6-host jobs. How their pods reach the
scheduler decides what happens without gangs: created together by their StatefulSets,
the first job's six pods come first and it usually wins whole; but pods that arrive
interleaved (capacity freed piece by piece, controllers racing, retries after backoff)
each get four hosts, and neither job can run. The tests make that interleaving
deterministic: both jobs' pods are created behind a scheduling gate of the test's own
(``podTemplate``), then released A-0, B-0, A-1, B-1, ... one at a time, each once the
scheduler has seen the one before. Released the same way:

- without gangs (``--no-gang``) both jobs end ``Partial``, 4 hosts each;
- with PodGroups one job runs whole, the other is ``Queued`` holding nothing, with the
  scheduler's reason; and it runs whole as soon as the first is deleted.

With Kueue (namespace ``queued``) the same two jobs are told apart by quota: one is
admitted, the other ``Queued`` with Kueue's reason and position, then admitted whole.
A preempted PodGroup gang (``disruptionMode: All``) loses every pod at once, waits
``Queued`` and restarts whole. ``ant rollout`` of a gang job, on both engines: pods
deleted in a batch come back into the same admitted gang. Every command is the real CLI
in process as alice; what exists is read with an independent client (the ``kubernetes``
package, as admin).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.helpers import Result, run_ant, unique, wait_for
from tests.integration.test_cli_jobs import check_schema
from tests.integration.test_queueing import delete_everything, pods, tpu_holders

if TYPE_CHECKING:
    from tests.conftest import DevCluster, Kueue

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("ant_priorities"),
    pytest.mark.timeout(300),
]

HOLD = "ant.dev/test-hold"  # the test's own scheduling gate


class Ant:
    def __init__(self, devcluster: DevCluster, namespace: str, cwd: Path) -> None:
        self.devcluster, self.namespace, self.cwd = devcluster, namespace, cwd
        self.created: list[str] = []  # jobs to delete afterwards (a shared namespace)

    def __call__(self, *argv: str) -> Result:
        full = ["--kubeconfig", str(self.devcluster.kubeconfig), "--context", "alice"]
        return run_ant([*full, "-n", self.namespace, *argv], vars={"USER": "nobody"}, cwd=self.cwd)

    def ok(self, *argv: str) -> Result:
        result = self(*argv)
        assert result.code == 0, str(result)
        return result

    def statuses(self) -> dict[str, str]:
        listed = self.ok("list", "-o", "json").json()
        return {j["name"]: j["status"] for j in listed["items"]}

    def show(self, name: str) -> dict[str, Any]:
        return dict(self.ok("show", name, "-o", "json").json())


@pytest.fixture
def ant(devcluster: DevCluster, namespace: str, tmp_path: Path) -> Iterator[Ant]:
    """ant in a fresh namespace, on an empty pool; everything deleted afterwards."""
    assert (devcluster.node_count, devcluster.tpus_per_node) == (8, 4)
    wait_for(
        "the TPU pool to be free (another test still holds it?)",
        lambda: not tpu_holders(devcluster),
        120,
        state=lambda: tpu_holders(devcluster),
    )
    try:
        yield Ant(devcluster, namespace, tmp_path)
    finally:
        delete_everything(devcluster, namespace)


def held_job_file(tmp_path: Path) -> str:
    """A job spec whose pods are created behind the test's scheduling gate."""
    path = tmp_path / "held.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "image": "busybox:1.36",
                "replicas": 6,
                "resources": {"google.com/tpu": "4"},
                "podTemplate": {"spec": {"schedulingGates": [{"name": HOLD}]}},
            }
        )
    )
    return str(path)


def bound(devcluster: DevCluster, namespace: str, job: str) -> int:
    return sum(1 for p in pods(devcluster, namespace, f"ant.dev/job={job}") if p.spec.node_name)


def release_interleaved(devcluster: DevCluster, namespace: str, jobs: list[str]) -> None:
    """Lift the test's gate pod by pod: jobs[0]-0, jobs[1]-0, jobs[0]-1, ...; each pod
    once the scheduler has looked at the one before (its PodScheduled condition)."""
    from kubernetes import client

    wait_for(
        "every pod to be created, gated",
        lambda: len(pods(devcluster, namespace)) == 6 * len(jobs),
    )
    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        for i in range(6):
            for job in jobs:
                name = f"{job}-{i}"
                core.patch_namespaced_pod(
                    name, namespace, [{"op": "remove", "path": "/spec/schedulingGates"}]
                )

                def seen(name: str = name) -> bool:
                    pod = core.read_namespaced_pod(name, namespace)
                    return any(c.type == "PodScheduled" for c in pod.status.conditions or [])

                wait_for(f"the scheduler to look at {name}", seen)


def test_without_gangs_two_interleaved_jobs_deadlock_partial(
    ant: Ant, devcluster: DevCluster, tmp_path: Path
) -> None:
    spec = held_job_file(tmp_path)
    for job in ("a", "b"):
        ant.ok("submit", spec, "--name", job, "--no-gang")
    release_interleaved(devcluster, ant.namespace, ["a", "b"])
    wait_for(
        "both jobs to hold 4 hosts each, Partial",
        lambda: ant.statuses() == {"a": "Partial", "b": "Partial"},
        state=ant.statuses,
    )
    assert (bound(devcluster, ant.namespace, "a"), bound(devcluster, ant.namespace, "b")) == (4, 4)
    assert ant.show("a")["gang"] is None


def test_podgroup_gangs_one_runs_whole_the_other_queues_then_runs_whole(
    ant: Ant, devcluster: DevCluster, tmp_path: Path
) -> None:
    spec = held_job_file(tmp_path)
    for job in ("a", "b"):
        ant.ok("submit", spec, "--name", job)
    release_interleaved(devcluster, ant.namespace, ["a", "b"])
    # The group that completes first (a: its sixth pod comes first) runs whole.
    wait_for(
        "a to run and b to be Queued",
        lambda: ant.statuses() == {"a": "Running", "b": "Queued"},
        state=ant.statuses,
    )
    assert bound(devcluster, ant.namespace, "b") == 0  # holds nothing
    shown = ant.show("b")
    check_schema(shown, "Job")  # admission's fields are documented
    assert shown["gang"] == "PodGroup"
    assert shown["admission"]["admitted"] is False
    assert "minCount (6) cannot be satisfied" in shown["admission"]["reason"]
    queued = ant.ok("queue", "-o", "json").json()["items"]
    assert [(i["name"], i["status"]) for i in queued] == [("b", "Queued")]
    assert "minCount (6)" in queued[0]["message"]
    admitted = ant.show("a")["admission"]
    assert (admitted["engine"], admitted["admitted"]) == ("PodGroup", True)
    assert admitted["admittedAt"]
    assert "Gang:         PodGroup, admitted" in ant.ok("show", "a").out

    ant.ok("delete", "a", "--yes")
    wait_for(
        "b to run whole once a is gone",
        lambda: ant.statuses() == {"b": "Running"} and bound(devcluster, ant.namespace, "b") == 6,
        state=ant.statuses,
    )


def test_a_podgroup_gang_is_owned_by_its_statefulset_and_goes_with_it(
    ant: Ant, devcluster: DevCluster
) -> None:
    from kubernetes import client

    ant.ok("submit", "--name", "g", "--image", "busybox:1.36", "--replicas", "3",
           "--min-replicas", "2", "--priority", "opportunistic")  # fmt: skip
    with devcluster.api_client("admin") as api:
        custom = client.CustomObjectsApi(api)
        group = custom.get_namespaced_custom_object(
            "scheduling.k8s.io", "v1beta1", ant.namespace, "podgroups", "g"
        )
        sts = client.AppsV1Api(api).read_namespaced_stateful_set("g", ant.namespace)
        assert sts.spec.template.spec.to_dict().get("scheduling_group") == {"pod_group_name": "g"}
        assert group["spec"]["schedulingPolicy"] == {"gang": {"minCount": 2}}
        assert group["spec"]["disruptionMode"] == {"all": {}}
        assert group["spec"]["priorityClassName"] == "ant-opportunistic"
        assert group["spec"]["preemptionPolicy"] == "Never"  # from the PriorityClass
        [owner] = group["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "StatefulSet",
            "g",
            sts.metadata.uid,
        )
        wait_for("g to run", lambda: ant.statuses() == {"g": "Running"}, state=ant.statuses)
        ant.ok("delete", "g", "--yes", "--wait")

        def group_gone() -> bool:
            listed = custom.list_namespaced_custom_object(
                "scheduling.k8s.io", "v1beta1", ant.namespace, "podgroups"
            )
            return not listed["items"]

        wait_for("the garbage collector to remove the PodGroup", group_gone)


def test_rollout_of_a_podgroup_gang_brings_pods_back_into_the_admitted_gang(
    ant: Ant, devcluster: DevCluster
) -> None:
    ant.ok("submit", "--name", "r", "--image", "busybox:1.36", "--replicas", "4", "--tpus", "4")
    wait_for("r to run", lambda: ant.statuses() == {"r": "Running"}, state=ant.statuses)
    ant.ok("update", "r", "--image", "busybox:1.37")
    rolled = ant("rollout", "r", "--batch-size", "2", "--yes", "--timeout", "2m")
    assert rolled.code == 0, str(rolled)
    found = pods(devcluster, ant.namespace, "ant.dev/job=r")
    assert len(found) == 4
    assert {p.spec.containers[0].image for p in found} == {"busybox:1.37"}
    assert all(p.spec.node_name for p in found)
    assert ant.statuses() == {"r": "Running"}
    restarted_into_the_admitted_gang(ant, devcluster, "r")


def restarted_into_the_admitted_gang(ant: Ant, devcluster: DevCluster, job: str) -> None:
    """`ant restart -r 1` of a running gang: the new pod joins the gang as it was admitted
    (the same admission, not a new one), and runs."""
    admitted = ant.show(job)["admission"]
    assert admitted["admitted"] is True, admitted
    mine = f"ant.dev/job={job}"
    before = {p.metadata.name: p.metadata.uid for p in pods(devcluster, ant.namespace, mine)}
    restarted = ant("restart", job, "-r", "1", "--yes", "--wait", "--timeout", "2m")
    assert restarted.code == 0, str(restarted)
    assert f"pod/{job}-1 is Ready on " in restarted.err
    after = {p.metadata.name: p.metadata.uid for p in pods(devcluster, ant.namespace, mine)}
    assert after[f"{job}-1"] != before[f"{job}-1"]
    assert {n: u for n, u in after.items() if n != f"{job}-1"} == {
        n: u for n, u in before.items() if n != f"{job}-1"
    }
    assert ant.show(job)["admission"] == admitted


# ---- Kueue -----------------------------------------------------------------------------------
@pytest.fixture
def queued(devcluster: DevCluster, kueue: Kueue, tmp_path: Path) -> Iterator[Ant]:
    """ant in Kueue's namespace, on an empty pool, with ant's WorkloadPriorityClasses
    (``ant admin install-queues`` over the dev cluster's own queue); the test's jobs are
    deleted afterwards (the namespace is shared)."""
    wait_for(
        "the TPU pool to be free (another test still holds it?)",
        lambda: not tpu_holders(devcluster),
        120,
        state=lambda: tpu_holders(devcluster),
    )
    [namespace] = kueue.namespaces[:1]
    admin = ["--kubeconfig", str(devcluster.kubeconfig), "--context", "admin", "-n", namespace]
    installed = run_ant(
        [*admin, "admin", "install-queues", "--cluster-queue", kueue.cluster_queue,
         "--queue", kueue.local_queue],
    )  # fmt: skip
    assert installed.code == 0, str(installed)
    ant = Ant(devcluster, namespace, tmp_path)
    try:
        yield ant
    finally:
        if ant.created:
            ant("delete", *ant.created, "--yes", "--wait")


def test_kueue_gangs_one_admitted_the_other_queued_by_quota_then_admitted_whole(
    queued: Ant, kueue: Kueue, devcluster: DevCluster
) -> None:
    ant, ns = queued, queued.namespace
    a, b = unique("ka"), unique("kb")
    ant.created += [a, b]
    for job in (a, b):
        ant.ok("submit", "--name", job, "--image", "busybox:1.36", "--replicas", "6",
               "--tpus", "4", "--queue", kueue.local_queue)  # fmt: skip

    def mine() -> dict[str, str]:
        return {k: v for k, v in ant.statuses().items() if k in (a, b)}

    wait_for(f"{a} to run and {b} to be Queued", lambda: mine() == {a: "Running", b: "Queued"},
             state=mine)  # fmt: skip
    assert bound(devcluster, ns, b) == 0
    # Kueue writes its reason on the Workload when it has tried to admit it.
    shown = wait_for(
        f"Kueue's reason on {b}'s Workload",
        lambda: (
            d
            if "insufficient unused quota for google.com/tpu"
            in ((d := ant.show(b))["admission"] or {}).get("reason", "")
            else None
        ),
        state=lambda: ant.show(b)["admission"],
    )
    check_schema(shown, "Job")
    assert (shown["gang"], shown["admission"]["engine"]) == ("Kueue", "Kueue")
    assert shown["admission"]["position"] == 1
    admitted = ant.show(a)["admission"]
    assert (admitted["admitted"], admitted["clusterQueue"]) == (True, kueue.cluster_queue)

    def tpu_quota() -> list[tuple[str, Any, Any, Any]]:
        doc = ant.ok("queue", "-o", "json").json()
        tpu = [q for q in doc["quotas"] if q["resource"] == "google.com/tpu"]
        return [(q["clusterQueue"], q["nominal"], q["reserved"], q["free"]) for q in tpu]

    # The ClusterQueue's status follows its admissions a moment later.
    wait_for(
        "the ClusterQueue to show a's quota reserved",
        lambda: tpu_quota() == [(kueue.cluster_queue, 32, 24, 8)],
        state=tpu_quota,
    )
    doc = ant.ok("queue", "-o", "json").json()
    [item] = [i for i in doc["items"] if i["name"] == b]
    assert (item["status"], item["reason"], item["kueueQueue"]) == (
        "Queued",
        "QuotaReserved",
        kueue.local_queue,
    )
    assert item["kueuePosition"] == 1
    assert "KUEUE #" in ant.ok("queue", "-o", "wide").out

    ant.ok("delete", a, "--yes")
    wait_for(
        f"{b} to run whole once {a} is gone",
        lambda: mine() == {b: "Running"} and bound(devcluster, ns, b) == 6,
        state=mine,
    )


def test_rollout_of_a_kueue_gang_brings_pods_back_into_the_admitted_workload(
    queued: Ant, kueue: Kueue, devcluster: DevCluster
) -> None:
    ant, r = queued, unique("kr")
    ant.created.append(r)
    ant.ok("submit", "--name", r, "--image", "busybox:1.36", "--replicas", "4", "--tpus", "4",
           "--queue", kueue.local_queue)  # fmt: skip
    wait_for(f"{r} to run", lambda: ant.statuses().get(r) == "Running", state=ant.statuses)
    ant.ok("update", r, "--image", "busybox:1.37")
    rolled = ant("rollout", r, "--batch-size", "2", "--yes", "--timeout", "2m")
    assert rolled.code == 0, str(rolled)
    found = pods(devcluster, ant.namespace, f"ant.dev/job={r}")
    assert {p.spec.containers[0].image for p in found} == {"busybox:1.37"}
    assert len(found) == 4
    assert all(p.spec.node_name for p in found)
    assert ant.show(r)["admission"]["admitted"] is True
    restarted_into_the_admitted_gang(ant, devcluster, r)


def test_a_preempted_podgroup_gang_loses_every_pod_waits_whole_and_restarts_whole(
    ant: Ant, devcluster: DevCluster
) -> None:
    ns = ant.namespace
    ant.ok("submit", "--name", "low", "--image", "busybox:1.36", "--replicas", "8",
           "--tpus", "4", "--priority", "opportunistic")  # fmt: skip
    wait_for("low to take the pool", lambda: bound(devcluster, ns, "low") == 8)
    ant.ok("submit", "--name", "top", "--image", "busybox:1.36", "--replicas", "4",
           "--tpus", "4", "--priority", "high")  # fmt: skip
    # disruptionMode All: the whole low group goes, not just the 4 nodes top needs.
    wait_for(
        "top to run and low to wait Queued with no pod bound",
        lambda: (
            ant.statuses() == {"top": "Running", "low": "Queued"}
            and bound(devcluster, ns, "low") == 0
        ),
        state=ant.statuses,
    )
    ant.ok("delete", "top", "--yes")
    wait_for(
        "low to run whole again",
        lambda: ant.statuses() == {"low": "Running"} and bound(devcluster, ns, "low") == 8,
        state=ant.statuses,
    )


def test_a_kueue_gang_is_preempted_whole_by_a_higher_one_and_readmitted_whole(
    queued: Ant, kueue: Kueue, devcluster: DevCluster
) -> None:
    """A ClusterQueue as `ant admin install-queues` makes it (it preempts LowerPriority;
    the dev cluster's own queue does not preempt): an opportunistic gang holding the whole
    quota is evicted whole for a high one, waits Queued holding nothing, and is admitted
    whole again once the high one is gone."""
    from kubernetes import client

    ant, ns = queued, queued.namespace
    cq, lq = unique("preempting"), unique("preempting")
    admin = ["--kubeconfig", str(devcluster.kubeconfig), "--context", "admin", "-n", ns]
    made = run_ant([*admin, "admin", "install-queues", "--cluster-queue", cq, "--queue", lq])
    assert made.code == 0, str(made)
    low, top = unique("klow"), unique("ktop")
    ant.created += [low, top]
    try:
        ant.ok("submit", "--name", low, "--image", "busybox:1.36", "--replicas", "8",
               "--tpus", "4", "--priority", "opportunistic", "--queue", lq)  # fmt: skip
        wait_for(f"{low} to take the pool", lambda: bound(devcluster, ns, low) == 8)
        ant.ok("submit", "--name", top, "--image", "busybox:1.36", "--replicas", "4",
               "--tpus", "4", "--priority", "high", "--queue", lq)  # fmt: skip

        def mine() -> dict[str, str]:
            return {k: v for k, v in ant.statuses().items() if k in (low, top)}

        wait_for(
            f"{top} to run and {low} to wait Queued with no pod bound",
            lambda: mine() == {top: "Running", low: "Queued"} and bound(devcluster, ns, low) == 0,
            state=lambda: (mine(), bound(devcluster, ns, low)),
        )
        assert ant.show(low)["admission"]["admitted"] is False
        ant.ok("delete", top, "--yes", "--wait")
        wait_for(f"{low} to run whole again", lambda: bound(devcluster, ns, low) == 8)
        assert ant.show(low)["admission"]["admitted"] is True
    finally:
        ant("delete", low, top, "--yes", "--wait")
        ant.created.clear()
        with devcluster.api_client("admin") as api:
            custom = client.CustomObjectsApi(api)
            custom.delete_namespaced_custom_object(
                "kueue.x-k8s.io", "v1beta2", ns, "localqueues", lq
            )
            custom.delete_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues", cq)
