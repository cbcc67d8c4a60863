"""The Python API (docs/python.md) against the dev cluster, as a notebook would use it:
``ant.Client`` as alice; what it created is read back with kubectl's view (admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import ant
from ant.errors import ExitCode
from tests.helpers import unique, wait_for

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]


@pytest.fixture
def client(devcluster: DevCluster, namespace: str) -> ant.Client:
    return ant.Client(context="alice", namespace=namespace, kubeconfig=str(devcluster.kubeconfig))


def test_a_notebook_session(client: ant.Client, devcluster: DevCluster) -> None:
    name = unique("nb")
    job = client.submit(
        name=name,
        image="busybox:1.36",
        replicas=2,
        command=["python", "train.py"],
        env={"WANDB_PROJECT": "bert"},
        labels={"team": "nlp"},
    )
    assert isinstance(job, ant.Job)
    assert (job.name, job.namespace, job.replicas, job.user) == (name, client.namespace, 2, "alice")

    running = client.wait(job, timeout=60)
    assert running.status is ant.JobStatus.RUNNING
    assert running.ready == 2
    assert [p.pod for p in running.pods] == [f"{name}-0", f"{name}-1"]

    assert [j.name for j in client.list()] == [name]
    assert client.list(selector="team=vision") == []
    assert client.get(name).labels["team"] == "nlp"

    lines = client.logs(name, replica=1, tail=3)
    first = next(lines)
    assert first.endswith("\n")
    lines.close()

    old = {p.pod: p.uid for p in running.pods}
    deleted = client.restart(name, [1], wait=True, timeout=60)
    assert deleted == {f"{name}-1": old[f"{name}-1"]}
    after = client.get(name)
    assert {p.pod: p.uid == old[p.pod] for p in after.pods} == {
        f"{name}-0": True,
        f"{name}-1": False,
    }

    client.delete(job, wait=True, timeout=60)
    with pytest.raises(ant.NotFoundError) as caught:
        client.get(name)
    assert caught.value.exit_code is ExitCode.NOT_FOUND


def test_errors_are_the_ant_error_tree(client: ant.Client) -> None:
    with pytest.raises(ant.ValidationError) as bad:
        client.submit(name="Bad_Name", image="busybox:1.36")
    assert bad.value.exit_code is ExitCode.USAGE
    with pytest.raises(ant.NotFoundError, match="job no-such-job not found") as missing:
        client.get("no-such-job")
    assert missing.value.exit_code is ExitCode.NOT_FOUND
    # alice may not read Secrets here: the reference is reported, not checked.
    heard: list[str] = []
    name = unique("sec")
    client.submit(
        name=name, image="busybox:1.36", secret_env=["K=nope:key"], on_unchecked=heard.append
    )
    assert heard == ["Secret nope"]
    client.delete(name)
    with pytest.raises(ant.UsageError, match="unknown fields: imagee"):
        client.submit(name="x", imagee="busybox")  # type: ignore[arg-type]
    name = unique("dup")
    client.submit(name=name, image="busybox:1.36", command="sleep 1000")
    with pytest.raises(ant.JobExists):
        client.submit(name=name, image="busybox:1.36")
    client.delete(name)


def test_other_users_jobs_need_force(
    client: ant.Client, devcluster: DevCluster, namespace: str
) -> None:
    bob = ant.Client(context="bob", namespace=namespace, kubeconfig=str(devcluster.kubeconfig))
    name = unique("mine")
    client.submit(name=name, image="busybox:1.36")
    client.wait(name, timeout=60)
    with pytest.raises(ant.NotOwner, match=f"job {name} in {namespace} belongs to alice") as e:
        bob.delete(name)
    assert e.value.exit_code == 9
    with pytest.raises(ant.NotOwner):
        bob.restart(name)
    assert client.get(name).replicas == 1  # untouched
    assert list(bob.restart(name, force=True)) == [f"{name}-0"]
    bob.delete(name, force=True, wait=True, timeout=60)
    with pytest.raises(ant.NotFoundError):
        client.get(name)


def test_a_rollout_from_python(client: ant.Client, devcluster: DevCluster) -> None:
    from kubernetes import client as k8s

    name = unique("ro")
    client.submit(name=name, image="busybox:1.36", replicas=2)
    client.wait(name, timeout=60)
    with devcluster.api_client("admin") as api:
        patch = {
            "spec": {
                "template": {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}}
            }
        }
        k8s.AppsV1Api(api).patch_namespaced_stateful_set(name, client.namespace, patch)
    result = client.rollout(name, max_unavailable="1", timeout=60)
    assert (result.updated, result.total, len(result.deleted)) == (2, 2, 2)
    job = wait_for(
        "both replicas Ready on the new revision",
        lambda: (
            (j := client.get(name)).ready == 2
            and all(p.revision == j.update_revision for p in j.pods)
            and j
        ),
    )
    assert result.target_revision == job.update_revision
    client.delete(name)
