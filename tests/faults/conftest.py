"""What the fault tests share: a seeded source of fault points, ant as a process to kill,
and the independent view (the ``kubernetes`` package, as admin) that judges what is left.

A run prints its seed; ``FAULT_SEED=<seed> pytest tests/faults`` replays the same points.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import Result, run_ant, wait_for

if TYPE_CHECKING:
    from tests.conftest import DevCluster

ANT = Path(sys.executable).parent / "ant"  # the venv's entry point, as a user runs it
# How ant's catch-all ends its "unexpected <exception>" line (exit 1): never wanted.
UNEXPECTED = "ANT_DEBUG=1 shows the traceback"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """This test's fault points: one seed per run, printed (shown when the test fails)."""
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fault seed {seed} (replay: FAULT_SEED={seed} pytest {request.node.nodeid})")
    return random.Random(f"{seed}:{request.node.name}")


# ---- the independent view ----------------------------------------------------------------
@dataclass
class View:
    """One namespace as admin at one moment: StatefulSets by name, and for every Service and
    PodGroup (the parts a job's StatefulSet owns) the uids of its StatefulSet owners."""

    statefulsets: dict[str, Any]
    services: dict[str, set[str]]
    podgroups: dict[str, set[str]]

    def orphans(self) -> list[str]:
        """Parts not owned by the existing StatefulSet of their name."""
        return [
            f"{kind} {name}"
            for kind, parts in (("Service", self.services), ("PodGroup", self.podgroups))
            for name, owners in parts.items()
            if (sts := self.statefulsets.get(name)) is None or sts.metadata.uid not in owners
        ]

    def names(self) -> set[str]:
        return set(self.services) | set(self.podgroups) | set(self.statefulsets)

    def live(self) -> set[str]:
        """StatefulSets not being deleted."""
        return {n for n, s in self.statefulsets.items() if s.metadata.deletion_timestamp is None}


def _owners(references: Any) -> set[str]:
    return {
        str(o["uid"] if isinstance(o, dict) else o.uid)
        for o in references or []
        if (o["kind"] if isinstance(o, dict) else o.kind) == "StatefulSet"
    }


@dataclass
class Admin:
    devcluster: DevCluster
    namespace: str

    def view(self) -> View:
        from kubernetes import client

        with self.devcluster.api_client("admin") as api:
            core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
            stses = apps.list_namespaced_stateful_set(self.namespace).items
            services = core.list_namespaced_service(self.namespace).items
            podgroups = client.CustomObjectsApi(api).list_namespaced_custom_object(
                "scheduling.k8s.io", "v1beta1", self.namespace, "podgroups"
            )["items"]
        return View(
            {s.metadata.name: s for s in stses},
            {s.metadata.name: _owners(s.metadata.owner_references) for s in services},
            {
                p["metadata"]["name"]: _owners(p["metadata"].get("ownerReferences"))
                for p in podgroups
            },
        )

    def no_orphans(self, timeout: float = 60) -> View:
        """Once the garbage collector has settled: no Service without its StatefulSet."""
        view: View | None = None

        def settled() -> View | None:
            nonlocal view
            view = self.view()
            return None if view.orphans() else view

        return wait_for(
            "no orphans (Services, PodGroups)",
            settled,
            timeout,
            state=lambda: view and view.orphans(),
        )

    def empty(self, timeout: float = 90) -> None:
        wait_for(
            f"nothing left in {self.namespace}",
            lambda: not self.view().names(),
            timeout,
            state=lambda: sorted(self.view().names()),
        )


@pytest.fixture
def admin(devcluster: DevCluster, namespace: str) -> Admin:
    return Admin(devcluster, namespace)


# ---- an API server restart, and a cluster that works again after it ----------------------
@pytest.fixture
def restart(devcluster: DevCluster, namespace: str) -> Iterator[Callable[[], None]]:
    """``restart()``: SIGKILL the API server, compact etcd while it is down (every
    resourceVersion from before is gone for good: 410 for a watch or a continue token that
    names one), and start it again a second later.

    A restarted API server answers 403 until its authorizer has loaded RBAC, and the
    controller-manager, the scheduler and kwok back off from those answers (up to ~30 s a
    watch). After a test that restarted it, a probe StatefulSet must get a Running pod, so
    the next test starts on a cluster that works."""
    restarted: list[bool] = []

    def restart_now() -> None:
        # Compacted while the server is down: no watch can resume before the compaction.
        argv = ("restart-apiserver", "--down-seconds", "1", "--compact")
        proc = devcluster.run_script(*argv, timeout=120)
        assert proc.returncode == 0, proc.stderr
        restarted.append(True)

    yield restart_now
    if restarted:
        control_plane_works(devcluster, namespace)


def control_plane_works(devcluster: DevCluster, namespace: str, timeout: float = 180) -> None:
    """Until a new StatefulSet gets a Running pod: the controller-manager, the scheduler
    and kwok all act again."""
    from kubernetes import client

    name = f"probe-{uuid.uuid4().hex[:6]}"
    labels = {"probe": name}
    statefulset = {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }
    with devcluster.api_client("admin") as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        apps.create_namespaced_stateful_set(namespace, statefulset)
        try:

            def probe_running() -> bool:
                pods = core.list_namespaced_pod(namespace, label_selector=f"probe={name}")
                return any(p.status.phase == "Running" for p in pods.items)

            wait_for(
                "the control plane to work again after the restart (a probe's pod Running)",
                probe_running,
                timeout,
            )
        finally:
            apps.delete_namespaced_stateful_set(name, namespace)


# ---- ant as a process, killed at a point -------------------------------------------------
Trigger = Callable[[View], bool]


@dataclass
class Victim:
    """One ``ant`` process and the point at which it is killed: ``after`` seconds from its
    start, or once ``when`` holds of what exists (whichever comes first)."""

    argv: list[str]
    point: str
    after: float = float("inf")
    when: Trigger | None = None
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    killed: bool = False
    out: str = ""
    err: str = field(default="", repr=False)

    @property
    def code(self) -> int:
        assert self.proc is not None
        return self.proc.returncode


def spawn(admin: Admin, *argv: str, user: str = "alice") -> subprocess.Popen[str]:
    """``ant`` as its own process in the test's namespace, no ANT_* settings inherited."""
    kubeconfig = str(admin.devcluster.kubeconfig)
    return subprocess.Popen(
        [str(ANT), "--kubeconfig", kubeconfig, "--context", user, "-n", admin.namespace, *argv],
        env={k: v for k, v in os.environ.items() if not k.startswith("ANT_")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running(admin: Admin, *argv: str, user: str = "alice") -> Iterator[subprocess.Popen[str]]:
    """``spawn``, and whatever happens in the block, nothing left running after it."""
    proc = spawn(admin, *argv, user=user)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def kill_at_points(
    admin: Admin, victims: Sequence[Victim], user: str = "alice", timeout: float = 120
) -> list[Victim]:
    """Start every victim at once (as ``user``) and SIGKILL each at its point; returns them
    once all have ended, killed or not."""
    for v in victims:
        v.proc = spawn(admin, *v.argv, user=user)
        v.started = time.monotonic()
    deadline = time.monotonic() + timeout
    running = list(victims)
    while running:
        assert time.monotonic() < deadline, f"still running: {[v.argv for v in running]}"
        view = admin.view() if any(v.when for v in running) else None
        for v in list(running):
            assert v.proc is not None
            if v.proc.poll() is not None:
                running.remove(v)
            elif time.monotonic() - v.started >= v.after or (
                v.when is not None and view is not None and v.when(view)
            ):
                v.proc.send_signal(signal.SIGKILL)
                v.killed = v.proc.wait() == -signal.SIGKILL  # else it ended just before
                running.remove(v)
        if running and view is None:
            # Only delays are pending: the next one is the condition being waited on.
            time.sleep(0.02)
    for v in victims:
        assert v.proc is not None
        v.out, v.err = v.proc.communicate()
    print(f"{sum(v.killed for v in victims)} of {len(victims)} killed before they ended")
    return list(victims)


def describe(victims: Sequence[Victim]) -> str:
    return "\n".join(
        f"{'killed' if v.killed else f'exit {v.code}'} at {v.point}: ant {' '.join(v.argv)}"
        + ("" if v.killed else f"\n  stdout: {v.out!r}\n  stderr: {v.err!r}")
        for v in victims
    )


def ant(admin: Admin, *argv: str, user: str = "alice") -> Result:
    """ant in process, in the test's namespace: the reruns and clean-ups after the faults."""
    kubeconfig = str(admin.devcluster.kubeconfig)
    args = ["--kubeconfig", kubeconfig, "--context", user, "-n", admin.namespace, *argv]
    return run_ant(args, vars={"USER": "nobody"})


def clean(result: Result, *codes: int) -> Result:
    """It ended with one of ``codes`` and, if it failed, with one clear line."""
    assert result.code in codes, result
    assert "Traceback" not in result.err, result
    assert UNEXPECTED not in result.err, result
    if result.code:
        assert len([e for e in result.err_lines if e.startswith("ant: error: ")]) == 1, result
    return result
