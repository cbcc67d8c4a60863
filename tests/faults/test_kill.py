"""kill -9 of ant at seeded random points (issue 14), then the invariants, checked as admin:

- no orphans: every Service is owned by the StatefulSet of its name (once the garbage
  collector has settled);
- every report true: what a command that ended on its own printed is what exists;
- a rerun of the same command completes or cleanly reports (one line, its exit code);
- ``ant delete`` removes whatever part of a job exists, until nothing is left.

Each test kills 20 ``ant`` processes, all started at once, each at its own point: a delay
from its start or a condition on what exists (e.g. "3 of its objects exist").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ant.errors import ExitCode
from tests.faults.conftest import (
    Admin,
    Trigger,
    Victim,
    View,
    ant,
    clean,
    describe,
    kill_at_points,
)
from tests.integration import test_rollout as rollout

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

POINTS = 20
IMAGE = ["--image", "busybox:1.36"]


def of(prefix: str, view: View) -> set[str]:
    return {n for n in view.names() if n.startswith(prefix)}


def victim(
    rng: random.Random,
    argv: list[str],
    chance: float,
    at_condition: Callable[[], tuple[str, Trigger]],
) -> Victim:
    """``argv`` killed, with probability ``chance``, once a condition holds
    (``at_condition()``: what it is, and the trigger), else at a seeded delay from its
    start (start-up included: some land before the first request)."""
    if rng.random() < chance:
        point, when = at_condition()
        return Victim(argv, point, when=when)
    seconds = rng.uniform(0.0, 8.0)
    return Victim(argv, f"{seconds:.2f}s after start", after=seconds)


def test_kill_9_during_submit(admin: Admin, rng: random.Random) -> None:
    victims = []
    for i in range(POINTS):
        name, argv = f"s{i}", ["submit", "--name", f"s{i}", "--replicas", "2", *IMAGE]

        # Between the StatefulSet and its Service, where orphans were made.
        def exists(name: str = name) -> tuple[str, Trigger]:
            return f"once StatefulSet {name} exists", lambda view: name in view.statefulsets

        victims.append(victim(rng, argv, 0.5, exists))
    kill_at_points(admin, victims)
    view = admin.no_orphans()
    for v in victims:
        name = v.argv[2]
        if not v.killed:
            assert v.code == 0, describe([v])
            assert f"job/{name} submitted" in v.out
            assert name in view.services, describe([v])
            assert name in view.statefulsets, describe([v])

    for v in victims:
        name = v.argv[2]
        rerun = clean(ant(admin, *v.argv), 0, ExitCode.CONFLICT)
        if rerun.code == ExitCode.CONFLICT:
            assert f"job {name} already exists" in rerun.err, rerun
            assert name in view.statefulsets, f"{rerun}\nyet nothing of it existed"
            if name not in view.services:  # killed between its StatefulSet and its Service
                assert "incomplete" in rerun.err, rerun
        else:
            assert name not in view.names(), f"{rerun}\nyet part of it existed"
    view = admin.no_orphans()
    assert set(view.statefulsets) == {f"s{i}" for i in range(POINTS)}
    assert set(view.services) <= set(view.statefulsets)

    deleted = clean(ant(admin, "delete", *sorted(view.names()), "--yes"), 0)
    assert sorted(deleted.out.splitlines()) == sorted(f"job/{n} deleted" for n in view.names())
    admin.empty()


def test_kill_9_during_submit_count(admin: Admin, rng: random.Random) -> None:
    count, victims = 3, []
    for i in range(POINTS):
        prefix, argv = f"c{i}-", ["submit", "--name", f"c{i}", "--count", str(count), *IMAGE]
        argv += ["-o", "name"]

        def made(prefix: str = prefix) -> tuple[str, Trigger]:
            k = rng.randint(1, 2 * count)  # objects: a StatefulSet and a Service per job
            return f"once {k} objects of {prefix}* exist", lambda v: len(of(prefix, v)) >= k

        victims.append(victim(rng, argv, 0.6, made))
    kill_at_points(admin, victims)
    view = admin.no_orphans()

    for i, v in enumerate(victims):
        prefix = f"c{i}-"
        if not v.killed:
            assert v.code == 0, describe([v])
            assert set(v.out.split()) == set(view.statefulsets) & of(prefix, view), describe([v])
        jobs = of(prefix, view) & set(view.statefulsets)
        if not jobs:
            continue
        (sweep,) = {view.statefulsets[n].metadata.labels["ant.dev/sweep"] for n in jobs}
        listed = clean(ant(admin, "list", "--sweep", sweep, "-o", "json"), 0).json()["items"]
        assert {j["name"] for j in listed} == jobs, describe([v])
        deleted = clean(ant(admin, "delete", "--sweep", sweep, "--yes"), 0)
        assert sorted(deleted.out.splitlines()) == sorted(f"job/{n} deleted" for n in jobs)
    admin.empty()


def test_kill_9_during_delete(admin: Admin, rng: random.Random) -> None:
    argv = ["submit", "--name", "d", "--count", str(POINTS), *IMAGE, "-o", "name"]
    submitted = clean(ant(admin, *argv), 0)
    names = submitted.out.split()
    assert len(names) == POINTS
    victims = []
    for name in names:
        argv = ["delete", name, "--yes"]

        def going(name: str = name) -> tuple[str, Trigger]:
            return f"once {name} is being deleted", lambda view: name not in view.live()

        victims.append(victim(rng, argv, 0.5, going))
    kill_at_points(admin, victims)
    view = admin.no_orphans()
    for v in victims:
        if not v.killed:
            assert v.code == 0, describe([v])
            assert v.out == f"job/{v.argv[1]} deleted\n", describe([v])
            assert v.argv[1] not in view.live(), describe([v])

    for v in victims:
        name = v.argv[1]
        rerun = clean(ant(admin, *v.argv), 0, ExitCode.NOT_FOUND)
        if rerun.code == 0:
            assert rerun.out == f"job/{name} deleted\n"
    admin.empty()


def test_kill_9_during_delete_sweep(admin: Admin, rng: random.Random) -> None:
    count, sweeps = 2, {}
    for i in range(POINTS):
        out = clean(ant(admin, "submit", "--name", f"w{i}", "--count", str(count), *IMAGE), 0)
        sweeps[out.out.split()[1].rstrip(":")] = f"w{i}-"
    victims = []
    for sweep, prefix in sweeps.items():
        argv = ["delete", "--sweep", sweep, "--yes"]

        def sweep_going(sweep: str = sweep, p: str = prefix) -> tuple[str, Trigger]:
            k = rng.randint(1, count)
            return (
                f"once {k} jobs of sweep {sweep} are going",
                lambda view: len(of(p, view) & view.live()) <= count - k,
            )

        victims.append(victim(rng, argv, 0.6, sweep_going))
    kill_at_points(admin, victims)
    view = admin.no_orphans()
    for v in victims:
        prefix = sweeps[v.argv[2]]
        if not v.killed:
            assert v.code == 0, describe([v])
            assert len(v.out.splitlines()) == count, describe([v])
            assert not (of(prefix, view) & view.live()), describe([v])

    for v in victims:
        left = of(sweeps[v.argv[2]], view) & view.live()
        rerun = clean(ant(admin, *v.argv), 0, ExitCode.NOT_FOUND)
        assert sorted(rerun.out.splitlines()) == sorted(f"job/{n} deleted" for n in left), rerun
    admin.empty()


def test_kill_9_during_rollout(
    admin: Admin, rng: random.Random, devcluster: DevCluster, namespace: str
) -> None:
    """4 jobs of 4 replicas, budget 1, 5 rounds: each round updates every job and kills its
    rollout at a point; then each is run to the end. Watched at every pod event: the budget
    held, and no pod was deleted twice."""
    jobs, replicas, rounds = ["r0", "r1", "r2", "r3"], 4, POINTS // 4
    runner = rollout.Ant(devcluster, namespace, Path.cwd())
    view = rollout.Cluster(devcluster, namespace)
    watchers: dict[str, rollout.PodWatcher] = {}
    try:
        for job in jobs:
            rollout.submit(runner, view, job, replicas)
            watchers[job] = rollout.PodWatcher(devcluster, namespace, job, replicas)
        argv = ["rollout", "--max-unavailable", "1", "--timeout", "60s", "--yes"]
        killed = 0
        for round_ in range(rounds):
            victims = []
            for job in jobs:
                clean(ant(admin, "update", job, "--env", f"ROUND={round_}"), 0)
                watcher = watchers[job]
                with watcher.lock:
                    watcher.target = view.update_revision(job)

                def went(w: rollout.PodWatcher = watcher, job: str = job) -> tuple[str, Trigger]:
                    k = len(w.removed) + rng.randint(0, 2)
                    return f"once {k + 1} pods of {job} went", lambda _: len(w.removed) > k

                victims.append(victim(rng, [*argv, job], 0.8, went))
            kill_at_points(admin, victims)
            for v in victims:
                killed += v.killed
                assert v.killed or v.code == 0, describe([v])
        for job in jobs:
            done = clean(ant(admin, "rollout", job, "--max-unavailable", "1", "--yes"), 0)
            assert f"{replicas}/{replicas} pods Ready" in done.out, done
            view.wait_ready(job, replicas, revision=watchers[job].target)
            assert watchers[job].max_unavailable <= 1, f"{job}: the budget was exceeded"
            twice = {pod: n for pod, n in watchers[job].deletions().items() if n > 1}
            assert not twice, f"{job}: deleted more than once: {twice}"
        print(f"{killed} of {rounds * len(jobs)} rollouts killed before they ended")
    finally:
        for w in watchers.values():
            w.close()
        view.close()
