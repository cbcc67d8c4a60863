"""Reads: they work with read-only RBAC, never write, and make only the requests their
output needs (issues 10 and 15).

The read-only user is the dev cluster's `viewer` (get/list/watch in `research`, no
verb that writes). Requests are counted from `-vv`, which logs every one the transport
sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ant.errors import ExitCode
from tests.conftest import DevCluster
from tests.helpers import Result, run_ant, unique, wait_for, what_ant_writes

RESEARCH = "research"  # where the viewer may read
REQUEST_LINE = re.compile(r"ant\.kube\.transport: (GET|POST|PUT|PATCH|DELETE) (\S+) (\d{3}) ")


@dataclass
class Ant:
    devcluster: DevCluster
    created: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, *argv: str, user: str = "alice") -> Result:
        args = ["--kubeconfig", str(self.devcluster.kubeconfig), "--context", user]
        return run_ant([*args, *argv])

    def ok(self, *argv: str, user: str = "alice") -> Result:
        result = self(*argv, user=user)
        assert result.code == 0, str(result)
        return result

    def submit(self, namespace: str, name: str, *flags: str) -> None:
        self.created.append((namespace, name))
        self.ok("submit", "-n", namespace, "--name", name, "--image", "busybox:1.36", *flags)


@pytest.fixture
def ant(devcluster: DevCluster) -> Iterator[Ant]:
    runner = Ant(devcluster)
    yield runner
    for namespace, name in runner.created:
        runner("delete", "-n", namespace, name, "--yes", "--force", user="admin")


def requests_made(result: Result) -> list[tuple[str, str]]:
    """(method, resource) of every request a `-vv` run sent, e.g. ("GET", "statefulsets")."""
    out = []
    for method, url, _ in REQUEST_LINE.findall(result.err):
        path = url.split("://", 1)[-1].split("?", 1)[0]
        out.append((method, path.rstrip("/").rsplit("/", 1)[-1]))
    return out


def statefulset(devcluster: DevCluster, namespace: str, name: str) -> Any:
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        return client.AppsV1Api(api).read_namespaced_stateful_set(name, namespace)


def fully_running(devcluster: DevCluster, namespace: str, name: str) -> bool:
    """What the StatefulSet's controller says: every replica Ready and updated."""
    sts = statefulset(devcluster, namespace, name)
    status, want = sts.status, sts.spec.replicas
    return bool(
        (status.observed_generation or 0) >= sts.metadata.generation
        and status.replicas == (status.ready_replicas or 0) == (status.updated_replicas or 0)
        and status.replicas == want
    )


# ---- read-only RBAC ------------------------------------------------------------------------
def test_a_read_only_user_reads_everything_and_writes_nothing(
    ant: Ant, devcluster: DevCluster
) -> None:
    name = unique("viewed")
    ant.submit(RESEARCH, name, "--replicas", "2", "--", "sh", "-c", "echo hello; sleep 3600")
    wait_for(f"{name} fully running", lambda: fully_running(devcluster, RESEARCH, name))
    before = what_ant_writes(statefulset(devcluster, RESEARCH, name))

    def read(*argv: str) -> Result:
        return ant.ok(*argv, "-n", RESEARCH, user="viewer")

    assert "no jobs found" in read("list").err  # the viewer's own: none
    for output in ("table", "wide", "json", "yaml", "name"):
        assert name in read("list", "--all-users", "-o", output).out
    assert read("show", name).out.startswith(f"Name:         {name}\n")
    assert read("show", name, "-o", "json").json()["name"] == name
    read("queue", "--all-users")
    read("queue", "--all-users", "-o", "json")
    read("logs", name)

    submitted = ant("submit", "-n", RESEARCH, "--name", unique("no"), "--image", "x", user="viewer")
    assert submitted.code == ExitCode.UNAUTHORIZED, str(submitted)
    deleted = ant("delete", "-n", RESEARCH, name, "--yes", user="viewer")
    assert deleted.code == ExitCode.UNAUTHORIZED, str(deleted)
    # Nothing above wrote: the job is exactly as it was.
    assert what_ant_writes(statefulset(devcluster, RESEARCH, name)) == before


# ---- the requests a read makes -------------------------------------------------------------
def test_ant_list_asks_who_you_are_once_and_lists_pods_only_when_needed(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    running, waiting = unique("running"), unique("waiting")
    ant.submit(namespace, running, "--replicas", "2")
    wait_for(f"{running} fully running", lambda: fully_running(devcluster, namespace, running))

    # The first read asks who alice is; later ones remember it.
    first = ant.ok("-vv", "list", "-n", namespace)
    assert requests_made(first) == [("POST", "selfsubjectreviews"), ("GET", "statefulsets")]
    assert running in first.out
    again = ant.ok("-vv", "list", "-n", namespace)
    assert requests_made(again) == [("GET", "statefulsets")]
    assert running in again.out
    json_requests = requests_made(ant.ok("-vv", "list", "-n", namespace, "-o", "json"))
    assert sorted(json_requests) == [("GET", "events"), ("GET", "statefulsets")]
    wide_requests = requests_made(ant.ok("-vv", "list", "-n", namespace, "-o", "wide"))
    assert sorted(wide_requests) == [("GET", "events"), ("GET", "pods"), ("GET", "statefulsets")]

    # A job whose StatefulSet cannot tell its state: its pods are read too.
    ant.submit(namespace, waiting, "--resource", "example.com/nothing=1")
    mixed = ant.ok("-vv", "list", "-n", namespace)
    assert requests_made(mixed) == [("GET", "statefulsets"), ("GET", "pods")]
    assert re.search(rf"^{waiting} +alice +Pending +0/1 ", mixed.out, re.M), mixed.out

    # A 403 forgets who alice is (her rights may have changed): the next read asks again.
    denied = ant("-vv", "list", "-n", "kube-system")
    assert denied.code == ExitCode.UNAUTHORIZED, str(denied)
    after = ant.ok("-vv", "list", "-n", namespace)
    assert requests_made(after)[0] == ("POST", "selfsubjectreviews")


def test_the_fast_path_shows_what_the_full_path_shows(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    """`ant list` from the StatefulSets alone (every job fully running) and from the
    StatefulSets joined with their pods: the same table and JobList, same cluster state."""
    import io

    from ant.cli.environment import Environment
    from ant.cli.terminal import Terminal
    from ant.cli.views import render_job_table
    from ant.jobs import documents
    from ant.jobs.lifecycle import list_jobs
    from ant.kube import config
    from ant.kube.client import Client
    from ant.kube.transport import Transport

    names = [unique("same") for _ in range(3)]
    for i, name in enumerate(names):
        ant.submit(namespace, name, "--replicas", str(i + 1), "--meta", f"index={i}")
    for name in names:
        wait_for(f"{name} fully running", lambda n=name: fully_running(devcluster, namespace, n))
    client = Client(Transport.from_kubeconfig(config.load(str(devcluster.kubeconfig), "alice")))

    def table(jobs: list[Any]) -> str:
        out = io.StringIO()
        env = Environment(stdout=out, stderr=io.StringIO(), vars={"COLUMNS": "200"})
        render_job_table(Terminal(env), jobs, wide=False, namespaces=True)
        return out.getvalue()

    def views() -> tuple[Any, ...]:
        fast = list_jobs(client, namespace, track_preemptions=True, summary_only=True)
        full = list_jobs(client, namespace, track_preemptions=True)
        assert all(j.pods == () for j in fast)  # built from the StatefulSets alone
        assert all(j.pods for j in full)
        return (table(fast), documents.job_list(fast)), (table(full), documents.job_list(full))

    # AGE may tick between the two reads: the same seconds on both is what is compared.
    fast, full = wait_for("the same table and JobList", lambda: (v := views())[0] == v[1] and v)
    assert fast == full
    assert {i["name"]: i["status"] for i in full[1]["items"]} == dict.fromkeys(names, "Running")
    ready = {i["name"]: i["ready"] for i in full[1]["items"]}
    assert ready == dict(zip(names, [1, 2, 3], strict=True))


def test_the_streamed_join_shows_what_the_whole_lists_show(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    """`ant list` decodes both lists item by item while they arrive and keeps a summary of
    each object (bounded memory); joining the whole decoded lists gives the same jobs,
    running or not, on the same cluster state."""
    from ant.jobs import schema
    from ant.jobs.lifecycle import list_jobs
    from ant.jobs.model import jobs_from
    from ant.kube import config
    from ant.kube import resources as r
    from ant.kube.client import Client
    from ant.kube.transport import Transport

    running, pending = unique("streamed"), unique("unschedulable")
    ant.submit(namespace, running, "--replicas", "2", "--meta", "kind=running")
    ant.submit(namespace, pending, "--gpus", "4096")  # no node has that many: Pending
    wait_for(f"{running} fully running", lambda: fully_running(devcluster, namespace, running))
    client = Client(Transport.from_kubeconfig(config.load(str(devcluster.kubeconfig), "alice")))
    selector = schema.mine_selector()

    def both() -> tuple[Any, Any]:
        streamed = list_jobs(client, namespace)
        sts = client.list(r.STATEFULSETS, namespace, label_selector=selector)
        pods = client.list(r.PODS, namespace, label_selector=selector)
        return streamed, jobs_from(sts.items, pods.items)

    # Jobs compare whole: every field, every replica (pods are read on both paths).
    streamed, whole = wait_for("the same jobs", lambda: (v := both())[0] == v[1] and v)
    assert streamed == whole
    assert {j.name: j.status.value for j in streamed} == {running: "Running", pending: "Pending"}
    assert {j.name: len(j.pods) for j in streamed} == {running: 2, pending: 1}
