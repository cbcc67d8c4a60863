"""Rollouts under faults (issue 14): pods stuck unavailable, absurd ranges, two rollouts at once.

The fixtures and the independent pod watcher are test_rollout.py's.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ant.errors import ExitCode
from tests.conftest import DevCluster
from tests.helpers import wait_for
from tests.integration import test_rollout as base
from tests.integration.test_rollout import Ant, Cluster, PodWatcher, submit, unique

# test_rollout.py's fixtures, used here by name.
ant, cluster, watchers = base.ant, base.cluster, base.watchers

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

LEASE = "ant.dev/rollout-lease"


def annotations(view: Cluster, job: str) -> dict[str, str]:
    return dict(view.statefulset(job).metadata.annotations or {})


def error_line(err: str) -> str:
    """The one error line on stderr (info lines may come before it)."""
    errors = [line for line in err.splitlines() if line.startswith("ant: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_old_pods_stuck_unavailable_are_replaced_first_without_waiting(
    ant: Ant, cluster: Cluster, watchers: Callable[[str, int, str], PodWatcher]
) -> None:
    """Two pods down on the old revision, a budget of 1: they go first, at no cost (they
    used to hold the rollout until --timeout ran out)."""
    job = unique("down")
    old = submit(ant, cluster, job, 4)
    ant.ok("update", job, "--image", "busybox:1.37")
    new = cluster.update_revision(job)
    stuck = [f"{job}-2", f"{job}-1"]
    # The fake kubelet only makes Pending pods Ready: a Running pod set not Ready stays so,
    # as a crash-looping one would.
    not_ready: dict[str, Any] = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    for name in stuck:
        cluster.core.patch_namespaced_pod_status(name, ant.namespace, not_ready)
    wait_for(
        f"{stuck} not Ready",
        lambda: all(not cluster.pods(job)[n].ready for n in stuck),
        state=lambda: cluster.pods(job),
    )
    watcher = watchers(job, 4, new)

    result = ant("rollout", job, "--timeout", "60s", "--yes")
    assert result.code == 0, str(result)
    assert "4/4 pods Ready" in result.out
    assert sorted(watcher.removed[:2]) == sorted((name, old) for name in stuck)
    assert watcher.deletions() == Counter({(f"{job}-{i}", old): 1 for i in range(4)})
    assert watcher.max_unavailable <= 2  # the two already down, never one more
    cluster.wait_ready(job, 4, revision=new)


def test_replicas_beyond_the_job_are_refused_before_anything_is_expanded(
    ant: Ant, cluster: Cluster
) -> None:
    job = unique("range")
    submit(ant, cluster, job, 2)
    started = time.monotonic()
    refused = ant("rollout", job, "--replicas", "0-9999999", "--dry-run")
    assert refused.code == ExitCode.USAGE, str(refused)
    assert f"--replicas: 2-9999999 out of range: {job} has replicas 0-1" in error_line(refused.err)
    assert time.monotonic() - started < 5, "the range was expanded"

    huge = ant("rollout", job, "--replicas", "0-99999999999999999999", "--dry-run")
    assert huge.code == ExitCode.USAGE, str(huge)
    assert "beyond any job's size" in error_line(huge.err)


def test_two_rollouts_of_one_job_one_holds_the_lease(
    ant: Ant, cluster: Cluster, watchers: Callable[[str, int, str], PodWatcher]
) -> None:
    job = unique("lease")
    old = submit(ant, cluster, job, 6)
    ant.ok("update", job, "--image", "busybox:1.37")
    new = cluster.update_revision(job)
    watcher = watchers(job, 6, new)

    first = ant.spawn("rollout", job, "--yes")  # one pod at a time: seconds
    try:
        lease = wait_for(
            "the first rollout's lease",
            lambda: json.loads(held) if (held := annotations(cluster, job).get(LEASE)) else None,
        )
        assert lease["pid"] == first.pid
        # Hold the first still, its lease valid for 90 s: the second finds it mid-way,
        # however fast this machine replaces the pods.
        first.send_signal(signal.SIGSTOP)
        try:
            second = ant("rollout", job, "--yes")
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.code == ExitCode.CONFLICT, str(second)
        line = error_line(second.err)
        assert f"job {job} is being rolled out by {lease['user']} on {lease['host']}" in line
        assert f"(pid {first.pid}) until {lease['expiresAt']}" in line

        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert "6/6 pods Ready" in out
    finally:
        if first.poll() is None:  # a failure above: nothing left running after the test
            first.kill()
        first.communicate()
    assert watcher.deletions() == Counter({(f"{job}-{i}", old): 1 for i in range(6)})
    assert LEASE not in annotations(cluster, job), "released when done"


def test_a_lease_held_on_another_machine_holds_until_it_expires(ant: Ant, cluster: Cluster) -> None:
    job = unique("held")
    submit(ant, cluster, job, 2)
    ant.ok("update", job, "--image", "busybox:1.37")
    new = cluster.update_revision(job)
    before = cluster.pods(job)
    expires = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    held = {
        "user": "bob",
        "host": "elsewhere.invalid",
        "pid": 42,
        "token": "b0b",
        "expiresAt": stamp,
    }
    cluster.apps.patch_namespaced_stateful_set(
        job, ant.namespace, {"metadata": {"annotations": {LEASE: json.dumps(held)}}}
    )

    refused = ant("rollout", job, "--yes")
    assert refused.code == ExitCode.CONFLICT, str(refused)
    line = error_line(refused.err)
    assert f"rolled out by bob on elsewhere.invalid (pid 42) until {stamp}" in line
    assert cluster.pods(job) == before

    wait_for("bob's lease to expire", lambda: datetime.now(UTC) >= expires, timeout=30)
    ant.ok("rollout", job, "--yes")
    cluster.wait_ready(job, 2, revision=new)
    assert LEASE not in annotations(cluster, job)


def test_the_lease_is_renewed_and_a_takeover_stops_its_holder(
    ant: Ant, cluster: Cluster, devcluster: DevCluster
) -> None:
    from ant.errors import RolloutHeld
    from ant.jobs.rollout.lease import Holder, RolloutLease
    from ant.kube import resources as r
    from ant.kube.client import connect

    job = unique("renew")
    submit(ant, cluster, job, 1)

    def expires_at() -> str:
        return str(json.loads(annotations(cluster, job)[LEASE])["expiresAt"])

    client = connect(str(devcluster.kubeconfig), "alice", env={})
    try:
        lease = RolloutLease(client, Holder.here(), seconds=3)  # renewed every second
        lease.take(client.get(r.STATEFULSETS, job, ant.namespace), lambda sts: {})
        first = expires_at()
        wait_for("a renewal of the lease", lambda: expires_at() > first, timeout=15)

        bob = {"user": "bob", "host": "elsewhere.invalid", "pid": 42, "token": "b0b"}
        bob["expiresAt"] = "2099-01-01T00:00:00Z"
        cluster.apps.patch_namespaced_stateful_set(
            job, ant.namespace, {"metadata": {"annotations": {LEASE: json.dumps(bob)}}}
        )
        wait_for("the holder to see its lease taken", lambda: lease.lost_to is not None)
        with pytest.raises(RolloutHeld, match=r"bob on elsewhere\.invalid"):
            lease.check()
        lease.release()
        assert json.loads(annotations(cluster, job)[LEASE])["user"] == "bob", "not ours to remove"
    finally:
        client.transport.close()
