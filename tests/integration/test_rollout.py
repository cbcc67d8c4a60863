"""ant update / rollout / rollback end to end against the dev cluster (docs/rollout.md).

ant runs as alice, through the real CLI in process (``ant.cli.main.run``), or as a
subprocess where it must be killed. What happened is judged by an independent watcher
(the ``kubernetes`` package, as admin): it sees every pod event and checks the budget at
each one, and records every deletion by pod name and revision.

Jobs here request no TPUs (kwok makes pods Ready within about a second) and live in the
test's own namespace, deleted afterwards.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ant.errors import ExitCode
from tests.conftest import DevCluster
from tests.helpers import Result, run_ant, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

REPO = Path(__file__).resolve().parents[2]
REVISION = "controller-revision-hash"
UNSCHEDULABLE = """\
spec:
  containers:
  - name: main
    resources:
      requests: {example.com/none: "1"}
      limits: {example.com/none: "1"}
"""


# ---- running ant -----------------------------------------------------------------------


@dataclass
class Ant:
    devcluster: DevCluster
    namespace: str
    cwd: Path

    def args(self, *argv: str) -> list[str]:
        return [
            "--kubeconfig",
            str(self.devcluster.kubeconfig),
            "--context",
            "alice",
            "-n",
            self.namespace,
            *argv,
        ]

    def __call__(self, *argv: str, stdin: io.StringIO | None = None) -> Result:
        return run_ant(self.args(*argv), stdin=stdin, cwd=self.cwd)

    def ok(self, *argv: str) -> Result:
        result = self(*argv)
        assert result.code == 0, str(result)
        return result

    def spawn(self, *argv: str) -> subprocess.Popen[str]:
        """ant as its own process (python -m ant), to be killed."""
        return subprocess.Popen(
            [sys.executable, "-m", "ant", *self.args(*argv)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


class TTYInput(io.StringIO):
    """A person at a terminal, answering a prompt."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def ant(devcluster: DevCluster, namespace: str, tmp_path: Path) -> Ant:
    return Ant(devcluster, namespace, tmp_path)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


# ---- the independent view ----------------------------------------------------------------
@dataclass(frozen=True)
class PodView:
    uid: str
    revision: str
    ready: bool
    terminating: bool
    grace: int  # deletionGracePeriodSeconds once terminating


def _view(pod: Any) -> PodView:
    conditions = pod.status.conditions or [] if pod.status else []
    return PodView(
        uid=pod.metadata.uid,
        revision=(pod.metadata.labels or {}).get(REVISION, ""),
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
        terminating=pod.metadata.deletion_timestamp is not None,
        grace=pod.metadata.deletion_grace_period_seconds or 0,
    )


class Cluster:
    """The admin's view through the `kubernetes` package: nothing of ant's code."""

    def __init__(self, devcluster: DevCluster, namespace: str) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.api = devcluster.api_client("admin")
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def close(self) -> None:
        self.api.close()

    def pods(self, job: str) -> dict[str, PodView]:
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=f"ant.dev/job={job}")
        return {p.metadata.name: _view(p) for p in listed.items}

    def statefulset(self, name: str) -> Any:
        return self.apps.read_namespaced_stateful_set(name, self.namespace)

    def update_revision(self, name: str) -> str:
        return str(self.statefulset(name).status.update_revision)

    def wait_ready(
        self, job: str, replicas: int, revision: str | None = None
    ) -> dict[str, PodView]:
        def probe() -> dict[str, PodView] | None:
            pods = self.pods(job)
            good = [
                p
                for p in pods.values()
                if p.ready and not p.terminating and (revision is None or p.revision == revision)
            ]
            return pods if len(good) == replicas == len(pods) else None

        return dict(wait_for(f"{replicas} pods of {job} Ready", probe))


@pytest.fixture
def cluster(devcluster: DevCluster, namespace: str) -> Iterator[Cluster]:
    view = Cluster(devcluster, namespace)
    yield view
    view.close()


class PodWatcher:
    """Watches a job's pods from a thread; at every event, counts the replicas that are
    unavailable (no pod, terminating, or not Ready) and keeps the maximum.

    Deletions are told apart by the revision being rolled out to (``target``):

    - ``removed``: pods *not* on the target revision that went away: what the rollout
      deleted. Each (pod, revision) must appear once.
    - ``graceful_target``: pods on the target revision deleted gracefully (a grace period
      above 0, as every DELETE of ant's has): must stay empty.
    - ``forced_target``: pods on the target revision force-deleted (grace 0). The dev
      cluster's fake kubelet (kwok v0.8.0) deletes a terminating pod by name without a uid
      precondition, so a stale queue entry can also remove the StatefulSet's fresh
      replacement of the same name; the real kubelet deletes by uid (kubernetes#25224).
      Such a replica is an outside disruption, not counted against the rollout's budget
      until it is Ready again (ant still counts it when it decides: see the docs).
    """

    def __init__(self, devcluster: DevCluster, namespace: str, job: str, replicas: int) -> None:
        from kubernetes import client

        self.namespace, self.job, self.replicas = namespace, job, replicas
        self.api = devcluster.api_client("admin")
        self.core = client.CoreV1Api(self.api)
        self.lock = threading.Lock()
        self.target = ""
        self.pods: dict[str, PodView] = {}
        self.seen_terminating: set[str] = set()  # uids deleted with a grace period
        self.removed: list[tuple[str, str]] = []  # (pod, revision), in order
        self.graceful_target: list[tuple[str, str]] = []
        self.forced_target = 0
        self.disrupted: set[str] = set()  # pod names, until Ready again
        self.max_unavailable = 0
        self.on_removed: Callable[[int], None] | None = None
        self.errors: list[BaseException] = []
        self.relists = 0  # after 410s
        listed = self.core.list_namespaced_pod(namespace, label_selector=self.selector)
        for pod in listed.items:
            self.pods[pod.metadata.name] = _view(pod)
        self.resource_version = listed.metadata.resource_version
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="pod-watcher")
        self.thread.start()

    @property
    def selector(self) -> str:
        return f"ant.dev/job={self.job}"

    def unavailable(self) -> int:
        names = (f"{self.job}-{i}" for i in range(self.replicas))
        return sum(
            1
            for n in names
            if n not in self.disrupted
            and ((p := self.pods.get(n)) is None or p.terminating or not p.ready)
        )

    def _run(self) -> None:
        import urllib3
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        try:
            while not self.stop.is_set():
                w = watch.Watch()
                try:
                    for event in w.stream(
                        self.core.list_namespaced_pod,
                        self.namespace,
                        label_selector=self.selector,
                        resource_version=self.resource_version,
                        timeout_seconds=1,
                    ):
                        self._apply(event["type"], event["object"])
                except ApiException as e:
                    if e.status != 410:
                        raise
                    self._relist()  # an API server restart or an etcd compaction
                    continue
                except urllib3.exceptions.HTTPError:  # the API server went away: again
                    self.stop.wait(0.2)
                    continue
                self.resource_version = w.resource_version or self.resource_version
        except BaseException as e:  # reported by close()
            self.errors.append(e)

    def _relist(self) -> None:
        """After a 410: the pods now, as events. Nothing was missed but what an API server
        that was down could not have written (the tests restart it; etcd keeps the rest)."""
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        now = {p.metadata.name: p for p in listed.items}
        with self.lock:  # gone, or replaced by a pod of the same name
            gone = [
                (n, v) for n, v in self.pods.items() if n not in now or now[n].metadata.uid != v.uid
            ]
        for name, view in gone:
            self._apply_view("DELETED", name, view)
        for name, pod in now.items():
            self._apply_view("MODIFIED", name, _view(pod))
        with self.lock:
            self.resource_version = listed.metadata.resource_version
            self.relists += 1

    def _apply(self, kind: str, pod: Any) -> None:
        with self.lock:
            self.resource_version = pod.metadata.resource_version
        self._apply_view(kind, pod.metadata.name, _view(pod))

    def _apply_view(self, kind: str, name: str, view: PodView) -> None:
        removed = 0
        with self.lock:
            if kind == "DELETED":
                self.pods.pop(name, None)
                graceful = view.uid in self.seen_terminating
                if view.revision != self.target:
                    self.removed.append((name, view.revision))
                    removed = len(self.removed)
                elif graceful:
                    self.graceful_target.append((name, view.revision))
                else:
                    self.forced_target += 1
                    self.disrupted.add(name)
            else:
                self.pods[name] = view
                if view.terminating and view.grace > 0:
                    self.seen_terminating.add(view.uid)
                elif view.ready:
                    self.disrupted.discard(name)
            self.max_unavailable = max(self.max_unavailable, self.unavailable())
        if removed and self.on_removed:
            self.on_removed(removed)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        self.api.close()
        assert not self.errors, f"the watcher failed: {self.errors!r}"

    def deletions(self) -> Counter[tuple[str, str]]:
        """What the rollout deleted, by (pod, revision)."""
        with self.lock:
            assert not self.graceful_target, (
                f"pods on {self.target} deleted: {self.graceful_target}"
            )
            return Counter(self.removed)


@pytest.fixture
def watchers(
    devcluster: DevCluster, namespace: str
) -> Iterator[Callable[[str, int, str], PodWatcher]]:
    made: list[PodWatcher] = []

    def start(job: str, replicas: int, target: str) -> PodWatcher:
        watcher = PodWatcher(devcluster, namespace, job, replicas)
        watcher.target = target
        made.append(watcher)
        return watcher

    yield start
    for w in made:
        w.close()


def submit(ant: Ant, cluster: Cluster, name: str, replicas: int, *flags: str) -> str:
    """A job of busybox pods; returns its revision once every pod is Ready on it."""
    ant.ok(
        "submit",
        "--name",
        name,
        "--image",
        "busybox:1.36",
        "--replicas",
        str(replicas),
        *flags,
        "--",
        "sleep",
        "infinity",
    )
    cluster.wait_ready(name, replicas)
    return cluster.update_revision(name)


# ---- the tests ---------------------------------------------------------------------------
def test_update_then_rollout_of_12_never_exceeds_max_unavailable(
    ant: Ant, cluster: Cluster, watchers: Callable[[str, int, str], PodWatcher]
) -> None:
    job = unique("roll")
    old = submit(ant, cluster, job, 12)
    before = cluster.pods(job)

    # --dry-run shows the template diff and writes nothing.
    generation = cluster.statefulset(job).metadata.generation
    dry = ant.ok("update", job, "--image", "busybox:1.37", "--env", "LR=3e-4", "--dry-run")
    assert "-    image: busybox:1.36" in dry.out
    assert "+    image: busybox:1.37" in dry.out
    assert "+    - name: LR" in dry.out
    assert cluster.statefulset(job).metadata.generation == generation

    updated = ant.ok("update", job, "--image", "busybox:1.37", "--env", "LR=3e-4")
    new = cluster.update_revision(job)
    assert new != old
    assert f"revision {new} (was {old})" in updated.out
    sts = cluster.statefulset(job)
    record = json.loads(sts.metadata.annotations["ant.dev/last-update"])
    assert record["by"] == "alice"
    assert record["previousRevision"] == old
    assert record["changes"] == ["image busybox:1.37", "env LR=3e-4"]
    assert cluster.pods(job) == before  # nothing restarted

    plan = ant.ok("rollout", job, "--max-unavailable", "3", "--dry-run")
    assert "12 to replace, at most 3 unavailable" in plan.out
    assert "11 10 9" in plan.out
    assert cluster.pods(job) == before

    watcher = watchers(job, 12, new)
    result = ant.ok("rollout", job, "--max-unavailable", "3", "--yes")
    assert "12/12 pods Ready on" in result.out
    assert re.search(r"12 replaced in (\d+) batch", result.out)
    assert "batch 1/4 replacing" in result.err  # plain progress lines when not a TTY

    after = cluster.wait_ready(job, 12, revision=new)
    assert all(p.revision == new for p in after.values())
    assert 1 <= watcher.max_unavailable <= 3, "never more than --max-unavailable"
    deletions = watcher.deletions()
    assert deletions == Counter({(f"{job}-{i}", old): 1 for i in range(12)})

    status = ant.ok("rollout", "status", job, "-o", "json").json()
    assert status["state"] == "Complete"
    assert status["updated"] == 12
    assert status["updateRevision"] == new
    assert status["rollout"]["finishedAt"]
    assert status["revisions"][0] == {
        "name": new,
        "revision": 2,
        "pods": 12,
        "ready": 12,
        "replicas": "0-11",
        "update": True,
    }
    # Idempotent: nothing left to do, nothing deleted.
    again = ant.ok("rollout", job, "--yes")
    assert "0 replaced" in again.out
    assert watcher.deletions() == deletions


def test_canary_updates_exactly_the_chosen_replicas(
    ant: Ant,
    cluster: Cluster,
    watchers: Callable[[str, int, str], PodWatcher],
    devcluster: DevCluster,
) -> None:
    job = unique("canary")
    old = submit(ant, cluster, job, 12)
    ant.ok("update", job, "--image", "busybox:1.37")
    new = cluster.update_revision(job)
    before = cluster.pods(job)
    watcher = watchers(job, 12, new)

    result = ant.ok("rollout", job, "--replicas", "0,1", "--max-unavailable", "2", "--yes")
    assert "(replicas 0-1) complete: 2/2" in result.out
    wait_for("the canary", lambda: all(cluster.pods(job)[f"{job}-{i}"].ready for i in (0, 1)))
    pods = cluster.pods(job)
    assert {n for n, p in pods.items() if p.revision == new} == {f"{job}-0", f"{job}-1"}
    for i in range(2, 12):
        assert pods[f"{job}-{i}"] == before[f"{job}-{i}"], "not a canary pod: untouched"
    status = ant.ok("rollout", "status", job, "-o", "json").json()
    assert status["state"] == "Pending"
    assert [(r["name"], r["replicas"]) for r in status["revisions"]] == [
        (new, "0-1"),
        (old, "2-11"),
    ]

    # The rest, through ant.jobs.rollout directly, counting API calls: they grow with the
    # pods (a DELETE each) and batches (a WATCH each), never with polling.
    from ant.jobs import rollout as ro
    from ant.kube.client import connect

    client = connect(str(devcluster.kubeconfig), "alice", env={})
    calls: Counter[str] = Counter()

    def count(resp: Any, *args: Any, **kwargs: Any) -> Any:
        kind = "WATCH" if "watch=" in resp.request.url else resp.request.method
        calls.update([kind])
        return resp

    client.transport.session.hooks["response"].append(count)
    try:
        sts = ro.load(client, ant.namespace, job)
        done = ro.run(client, sts, ro.RolloutOptions(max_unavailable=ro.Budget(5)))
    finally:
        client.transport.close()
    assert done.updated == 12
    assert calls["DELETE"] == 10
    # One GET of the StatefulSet, one LIST of its pods, 2 annotation PATCHes, a WATCH per
    # wait: 2 batches (more only if a replacement was disrupted, see PodWatcher).
    assert calls["PATCH"] == 2
    assert calls["GET"] == 2, calls
    assert done.batches >= 2
    assert calls["WATCH"] <= 2 * done.batches, calls
    assert watcher.deletions() == Counter({(f"{job}-{i}", old): 1 for i in range(12)})
    assert watcher.max_unavailable <= 5


def test_killed_rollout_resumes_and_deletes_each_pod_once(
    ant: Ant, cluster: Cluster, watchers: Callable[[str, int, str], PodWatcher]
) -> None:
    job = unique("kill")
    old = submit(ant, cluster, job, 12)
    ant.ok("update", job, "--image", "busybox:1.37")
    new = cluster.update_revision(job)
    watcher = watchers(job, 12, new)

    for kill_after in (1, 5):
        proc = ant.spawn("rollout", job, "--max-unavailable", "2", "--yes")
        killed = threading.Event()

        def kill(
            deleted: int,
            proc: subprocess.Popen[str] = proc,
            at: int = kill_after,
            killed: threading.Event = killed,
        ) -> None:
            if deleted >= at and not killed.is_set():
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)

        watcher.on_removed = kill
        kill(len(watcher.removed))
        out, err = proc.communicate(timeout=120)
        watcher.on_removed = None
        assert proc.returncode == -signal.SIGKILL, f"finished before the kill: {out} {err}"
        status = ant.ok("rollout", "status", job, "-o", "json").json()
        assert status["state"] in ("Progressing", "Complete")
        assert status["rollout"]["targetRevision"] == new
        assert status["rollout"]["finishedAt"] is None

    result = ant.ok("rollout", job, "--max-unavailable", "2", "--yes")
    assert "12/12 pods Ready" in result.out
    cluster.wait_ready(job, 12, revision=new)
    deletions = watcher.deletions()
    assert deletions == Counter({(f"{job}-{i}", old): 1 for i in range(12)}), deletions
    assert not any(rev == new for _, rev in deletions)
    assert watcher.max_unavailable <= 2, "the budget held across kill -9"
    assert ant.ok("rollout", "status", job, "-o", "json").json()["state"] == "Complete"


def test_pod_that_cannot_be_ready_pauses_then_rollback_restores(
    ant: Ant, cluster: Cluster, watchers: Callable[[str, int, str], PodWatcher], tmp_path: Path
) -> None:
    job = unique("stuck")
    # Without a gang: each stuck pod has its own reason (in a PodGroup gang, the pods
    # that could fit wait for the one that cannot, with the group's reason).
    old = submit(ant, cluster, job, 6, "--no-gang")
    template = cluster.statefulset(job).spec.template.to_dict()
    fragment = tmp_path / "unschedulable.yaml"
    fragment.write_text(UNSCHEDULABLE)
    ant.ok("update", job, "-f", str(fragment))
    bad = cluster.update_revision(job)
    before = cluster.pods(job)
    watcher = watchers(job, 6, bad)

    paused = ant("rollout", job, "--max-unavailable", "2", "--timeout", "3s", "--yes")
    assert paused.code == ExitCode.PAUSED, str(paused)
    assert f"rollout of {job} paused: pods {job}-4, {job}-5 not Ready after 3s" in paused.err
    assert "Unschedulable" in paused.err
    assert "Insufficient example.com/none" in paused.err
    pods = cluster.pods(job)
    assert {n for n, p in pods.items() if p.revision == bad} == {f"{job}-5", f"{job}-4"}
    for i in range(4):
        assert pods[f"{job}-{i}"] == before[f"{job}-{i}"]

    status = ant.ok("rollout", "status", job, "-o", "json").json()
    assert status["state"] == "Paused"
    assert status["paused"] is True
    assert f"{job}-5" in status["pausedReason"]
    assert {p["name"] for p in status["unavailable"]} == {f"{job}-4", f"{job}-5"}
    table = ant.ok("rollout", "status", job)
    assert "Paused: since" in table.out

    # Running it again deletes nothing more: the stuck pods hold the whole budget.
    again = ant("rollout", job, "--max-unavailable", "2", "--timeout", "2s", "--yes")
    assert again.code == ExitCode.PAUSED, str(again)
    assert len(watcher.removed) == 2

    diff = ant.ok("rollback", job, "--dry-run")
    assert "-        example.com/none: '1'" in diff.out
    watcher.target = old
    rolled = ant.ok("rollback", job)
    assert f"rolled back to revision 1 ({old})" in rolled.out
    sts = cluster.statefulset(job)
    assert sts.status.update_revision == old
    assert sts.spec.template.to_dict() == template
    record = json.loads(sts.metadata.annotations["ant.dev/last-update"])
    assert record["changes"] == [f"rollback to revision 1 ({old})"]
    assert record["previousRevision"] == bad

    ant.ok("rollout", job, "--max-unavailable", "2", "--yes")
    after = cluster.wait_ready(job, 6, revision=old)
    for i in range(4):  # on the restored revision all along: never deleted
        assert after[f"{job}-{i}"] == before[f"{job}-{i}"]
    assert watcher.deletions() == Counter(
        {(f"{job}-5", old): 1, (f"{job}-4", old): 1, (f"{job}-5", bad): 1, (f"{job}-4", bad): 1}
    )
    assert ant.ok("rollout", "status", job, "-o", "json").json()["pausedReason"] is None


def test_concurrent_edit_during_update_is_not_lost(
    ant: Ant, cluster: Cluster, devcluster: DevCluster
) -> None:
    """Someone patches the job between ant's read and ant's write: ant's patch (made from
    the old resourceVersion) gets a 409, re-reads, applies its change again; both survive."""
    from ant.jobs import rollout as ro
    from ant.kube.client import connect

    job = unique("race")
    submit(ant, cluster, job, 2)
    client = connect(str(devcluster.kubeconfig), "alice", env={})
    methods: list[str] = []
    edited = threading.Event()

    def edit_after_first_read(resp: Any, *args: Any, **kwargs: Any) -> Any:
        methods.append(resp.request.method)
        if (
            resp.request.method == "GET"
            and f"/statefulsets/{job}" in resp.request.url
            and not edited.is_set()
        ):
            edited.set()
            cluster.apps.patch_namespaced_stateful_set(
                job,
                ant.namespace,
                {
                    "metadata": {"annotations": {"someone/else": "was-here"}},
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {"name": "main", "env": [{"name": "EXTERNAL", "value": "1"}]}
                                ]
                            }
                        }
                    },
                },
            )
        return resp

    client.transport.session.hooks["response"].append(edit_after_first_read)
    try:
        result = ro.update(
            client,
            ant.namespace,
            job,
            ro.TemplateChange(image="busybox:1.37", env={"MINE": "2"}),
            by="alice",
        )
    finally:
        client.transport.close()
    assert edited.is_set()
    assert result.attempts == 2, methods
    assert methods.count("PATCH") == 2  # the first one was refused with 409
    sts = cluster.statefulset(job)
    main = sts.spec.template.spec.containers[0]
    env = {e.name: e.value for e in main.env}
    assert main.image == "busybox:1.37"
    assert env["EXTERNAL"] == "1", "the concurrent edit survived"
    assert env["MINE"] == "2"
    assert sts.metadata.annotations["someone/else"] == "was-here"
    assert result.revision == sts.status.update_revision


def test_only_ant_jobs_unless_a_statefulset_is_named(ant: Ant, cluster: Cluster) -> None:
    name = unique("plain")
    labels = {"app": name}
    cluster.apps.create_namespaced_stateful_set(
        ant.namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 2,
                "serviceName": name,
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "OnDelete"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
                },
            },
        },
    )

    def ready() -> bool:
        pods = cluster.core.list_namespaced_pod(ant.namespace, label_selector=f"app={name}")
        return len([p for p in pods.items if _view(p).ready]) == 2

    wait_for("the plain StatefulSet", ready)
    for argv in (("update", name, "--image", "nginx:2"), ("rollout", name, "--yes")):
        refused = ant(*argv)
        assert refused.code == ExitCode.USAGE, str(refused)
        assert "not created by ant" in refused.err
    assert cluster.statefulset(name).spec.template.spec.containers[0].image == "nginx:1"

    ant.ok("update", f"statefulset/{name}", "--image", "nginx:2")
    result = ant.ok("rollout", f"statefulset/{name}", "--batch-size", "2", "--yes")
    assert "2/2 pods Ready" in result.out
    new = cluster.update_revision(name)
    pods = cluster.core.list_namespaced_pod(ant.namespace, label_selector=f"app={name}").items
    assert {_view(p).revision for p in pods} == {new}


def test_on_failure_continue_goes_on_then_exits_paused(
    ant: Ant, cluster: Cluster, watchers: Callable[[str, int, str], PodWatcher], tmp_path: Path
) -> None:
    job = unique("cont")
    old = submit(ant, cluster, job, 4, "--no-gang")  # each stuck pod its own reason
    fragment = tmp_path / "unschedulable.yaml"
    fragment.write_text(UNSCHEDULABLE)
    ant.ok("update", job, "-f", str(fragment))
    bad = cluster.update_revision(job)
    watcher = watchers(job, 4, bad)

    result = ant(
        "rollout", job, "--batch-size", "2", "--timeout", "2s", "--on-failure", "continue", "--yes"
    )
    assert result.code == ExitCode.PAUSED, str(result)
    assert f"rollout of {job} paused: finished, but pods" in result.err
    assert "never became Ready: Unschedulable" in result.err
    assert "batch 2/2" in result.err  # it went on after the first batch timed out
    assert watcher.deletions() == Counter({(f"{job}-{i}", old): 1 for i in range(4)})
    assert {p.revision for p in cluster.pods(job).values()} == {bad}
    status = ant.ok("rollout", "status", job, "-o", "json").json()
    assert status["state"] == "Paused"
    assert "never became Ready" in status["pausedReason"]


@pytest.mark.timeout(180)
def test_rollout_bench_runs_at_a_tiny_size(devcluster: DevCluster, tmp_path: Path) -> None:
    """`python -m bench rollout` keeps working (docs/benchmarks.md has its full-size numbers)."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "bench", "rollout", "--kubeconfig", str(devcluster.kubeconfig),
            "--replicas", "4", "--budgets", "50%,1", "--timeout", "60",
            "--results-dir", str(tmp_path),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "rollout-4.json").read_text())
    first, second = result["rollouts"]
    assert (first["deleted"], first["updated"], second["deleted"], second["updated"]) == (4,) * 4
    # 2 and 4 batches, one WATCH each; more only if the fake kubelet disrupted a replacement
    # (see PodWatcher): the next batch then waits for it.
    assert first["batches"] >= 2
    assert second["batches"] >= 4
    for one in (first, second):
        calls = one["calls"]
        assert (calls["DELETE"], calls["LIST"], calls["PATCH"]) == (4, 1, 2)
        assert one["batches"] <= calls["WATCH"] <= 2 * one["batches"]
        assert set(calls) == {"DELETE", "LIST", "PATCH", "WATCH"}
    assert "| `--max-unavailable 50%` (2) |" in proc.stdout


def test_rollout_asks_first_on_a_terminal(ant: Ant, cluster: Cluster) -> None:
    job = unique("ask")
    submit(ant, cluster, job, 2)
    ant.ok("update", job, "--image", "busybox:1.37")
    new = cluster.update_revision(job)
    before = cluster.pods(job)

    no = ant("rollout", job, stdin=TTYInput("n\n"))
    assert no.code == ExitCode.ERROR, str(no)
    assert f"Replace 2 pod(s) of {job} with revision {new} (at most 1 unavailable)? [y/N]" in no.err
    assert "nothing replaced" in no.err
    assert cluster.pods(job) == before

    piped = ant("rollout", job)  # no terminal, no --yes: refused, nothing deleted
    assert piped.code == ExitCode.USAGE, str(piped)
    assert "pass --yes" in piped.err
    assert cluster.pods(job) == before

    yes = ant("rollout", job, stdin=TTYInput("y\n"))
    assert yes.code == 0, str(yes)
    cluster.wait_ready(job, 2, revision=new)
