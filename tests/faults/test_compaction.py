"""etcd compaction under running commands (issue 14).

Compaction makes old resourceVersions unreadable. A running API server still serves recent
ones from its watch cache (continue tokens included), so the fault that matters is a
restart followed by a compaction: a paged list's continue token, or a watch resumed from
a resourceVersion, then names a snapshot nothing holds, and the answer is 410 Gone.
ant must start the list over, or relist and resume its watch, and finish as if nothing
had happened.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ant.kube import resources as r
from ant.kube.client import connect
from tests.faults.conftest import UNEXPECTED, Admin, ant, clean, running
from tests.helpers import wait_for
from tests.integration import test_rollout as rollout

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]


def test_a_paged_list_whose_token_was_compacted_starts_over(
    devcluster: DevCluster, namespace: str, restart: Callable[[], None]
) -> None:
    """Page 1 is read; then a write, an API server restart and a compaction past it:
    page 2's token names a snapshot nothing holds any more (a running API server would
    serve it from its watch cache; etcd compacted it). 410: ant lists afresh and returns
    one consistent snapshot, the new object in it."""
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        for i in range(5):
            core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm-{i}"}})
        kube = connect(str(devcluster.kubeconfig), "admin")
        sent: list[dict[str, Any]] = []
        request = kube.transport.request

        def compacting_after_page_one(method: str, path: str, **kw: Any) -> Any:
            if "configmaps" not in path:
                return request(method, path, **kw)
            sent.append(dict(kw.get("params") or {}))
            response = request(method, path, **kw)
            if len(sent) == 1:  # page 1 is in: move past it
                core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm-late"}})
                restart()  # and compact etcd
            return response

        kube.transport.request = compacting_after_page_one  # type: ignore[method-assign]
        try:
            listed = kube.list(r.CONFIG_MAPS, namespace, limit=2)
        finally:
            kube.transport.close()
    names = sorted(c.metadata.name for c in listed.items)
    assert [n for n in names if n.startswith("cm-")] == [*(f"cm-{i}" for i in range(5)), "cm-late"]
    assert sent[1].get("continue"), sent  # page 2 was asked for with the expired token
    firsts = [p for p in sent if not p.get("continue")]
    assert len(firsts) == 2, sent  # and answered 410: the list started over


def test_apiserver_restart_and_compaction_during_a_rollout(
    admin: Admin,
    rng: random.Random,
    devcluster: DevCluster,
    namespace: str,
    restart: Callable[[], None],
) -> None:
    """A rollout (budget 1) waiting on its pods' watch when the API server restarts and
    etcd is compacted: its watch gets 410, it relists and finishes; the budget held and no
    pod was deleted twice (the test's own pod watch relists the same way)."""
    job, replicas = "compacted", 4
    runner = rollout.Ant(devcluster, namespace, Path.cwd())
    view = rollout.Cluster(devcluster, namespace)
    rollout.submit(runner, view, job, replicas)
    watcher = rollout.PodWatcher(devcluster, namespace, job, replicas)
    try:
        clean(ant(admin, "update", job, "--env", "ROUND=1"), 0)
        with watcher.lock:
            watcher.target = view.update_revision(job)
        k = rng.randint(1, replicas - 1)
        print(f"restart and compact once {k} pods were replaced")
        argv = ("rollout", job, "--max-unavailable", "1", "--yes", "--timeout", "3m")
        with running(admin, *argv) as proc:
            wait_for(
                f"{k} pods replaced", lambda: len(watcher.removed) >= k or proc.poll() is not None
            )
            restart()
            out, err = proc.communicate(timeout=240)
        assert "Traceback" not in err, err
        assert UNEXPECTED not in err, err
        if proc.returncode != 0:  # it may stop cleanly (exit 6); a rerun then finishes
            assert proc.returncode == 6, (out, err)
            clean(ant(admin, "rollout", job, "--max-unavailable", "1", "--yes"), 0)
        view.wait_ready(job, replicas, revision=watcher.target)
        assert watcher.max_unavailable <= 1, "the budget was exceeded"
        twice = {pod: n for pod, n in watcher.deletions().items() if n > 1}
        assert not twice, f"deleted more than once: {twice}"
        assert watcher.relists >= 1, "the test's watch never saw a 410: no fault was made"
    finally:
        watcher.close()
        view.close()
