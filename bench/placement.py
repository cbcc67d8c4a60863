"""``python -m bench placement``: one trace of gang jobs placed across three clusters with
uneven free capacity, against the same trace submitted to one cluster (docs/benchmarks.md).

On the dev clusters of ``make cluster-up CLUSTERS=3`` (each runs the ant controller), in
a namespace of its own on each, as admin (who may list every pod, so each cluster's free
capacity is known):

1. Filler jobs (1 replica x 4 TPUs, never ending) bring each cluster's free TPUs down
   to ``--free`` (default 8, 16, 32 of 32): one mostly full, one half, one free.
2. The trace (seeded): ``--jobs`` gang jobs of 1-4 replicas x 4 TPUs (busybox), each
   submitted at a random time within ``--duration`` seconds by a whole ``ant`` process
   (spawned on time, several may run at once). Their pod template carries the dev
   cluster's ``ant.dev/test-exit: "0@SECONDS"`` (``--run-min``..``--run-max``): every
   replica exits 0 that long after it started, the controller marks the job Succeeded
   and scales it to 0, and its TPUs are free again.
3. Modes, one after the other, the fillers staying: ``across`` submits every job with
   ``ant --clusters A,B,C submit`` (placement: docs/clusters.md); ``one`` submits every
   job with ``ant --context X submit`` to one cluster (``--one``; default the one with
   the most free TPUs, the best a researcher with one cluster could do).

A pod watch on every cluster notes, on this machine's clock, when each replica is first
Running and first Succeeded. Reported per mode: time to start (process spawned -> every
replica Running) p50/p95, makespan (first spawn -> last replica Succeeded), where the
jobs went and why (the ``placing the job in ...`` line on stderr), and the submit
processes' wall time. Results: bench/results/placement.json and a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    VENV_BIN,
    Deadline,
    markdown_table,
    percentile,
    summarize,
    write_json,
)
from bench.seed import log

TPU = "google.com/tpu"
TPUS_PER_POD = 4
MODES = ("across", "one")
PLACING = re.compile(r"placing the job in (\S+): (.*)$", re.M)
JOB_LABEL = "ant.dev/job"
ANT_PODS = "ant.dev/managed-by=ant"


@dataclass(frozen=True)
class TraceJob:
    index: int
    replicas: int
    submit_at: float  # seconds from the start of the mode
    run_seconds: int  # each replica exits 0 this long after it started


def trace(jobs: int, duration: float, run_min: int, run_max: int, seed: int) -> list[TraceJob]:
    rng = random.Random(seed)
    out = [
        TraceJob(i, rng.randint(1, 4), rng.uniform(0, duration), rng.randint(run_min, run_max))
        for i in range(jobs)
    ]
    return sorted(out, key=lambda j: j.submit_at)


# ---- watching the pods of every cluster --------------------------------------------------


@dataclass
class PodWatch:
    """When each replica (pod name) of each job was first seen Running and Succeeded."""

    running: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    succeeded: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    cluster: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self, client: Any, cluster: str, namespace: str) -> None:
        threading.Thread(target=self._run, args=(client, cluster, namespace), daemon=True).start()

    def _run(self, client: Any, cluster: str, namespace: str) -> None:
        from ant.errors import Gone
        from ant.kube import resources as r
        from ant.kube.watch import follow

        while not self.stop.is_set():
            listed = client.list(r.PODS, namespace, label_selector=ANT_PODS)
            for pod in listed.items:
                self._saw(cluster, pod)
            with contextlib.suppress(Gone):  # relist: the events in between are lost
                for event in follow(
                    client,
                    r.PODS,
                    listed.resource_version,
                    namespace,
                    label_selector=ANT_PODS,
                    stop=self.stop,
                ):
                    if event.type != "BOOKMARK":
                        self._saw(cluster, event.object)

    def _saw(self, cluster: str, pod: Any) -> None:
        now, phase = time.monotonic(), pod.status.phase
        job, name = pod.metadata.labels.get(JOB_LABEL, ""), pod.metadata.name
        with self.lock:
            self.cluster.setdefault(job, cluster)
            if phase in ("Running", "Succeeded"):
                self.running[job].setdefault(name, now)
            if phase == "Succeeded":
                self.succeeded[job].setdefault(name, now)

    def started(self, job: str, replicas: int) -> float | None:
        """When every replica had been Running (None: not yet)."""
        with self.lock:
            times = self.running.get(job, {})
            return max(times.values()) if len(times) >= replicas else None

    def done(self, job: str, replicas: int) -> float | None:
        with self.lock:
            times = self.succeeded.get(job, {})
            return max(times.values()) if len(times) >= replicas else None


# ---- the clusters ------------------------------------------------------------------------


def ant_argv(kubeconfig: Path, namespace: str, where: Sequence[str], *args: str) -> list[str]:
    return [
        str(VENV_BIN / "ant"),
        "--kubeconfig",
        str(kubeconfig),
        *where,
        "-n",
        namespace,
        "--deadline",
        "300s",  # a loaded machine: a submit may wait long for a CPU
        *args,
    ]


def ant_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANT_")}
    return {**env, "NO_COLOR": "1"}


def free_tpus(client: Any, namespace: str) -> int:
    """The cluster's free TPUs, as ``ant queue`` (and placement) sees them."""
    from ant.jobs.queue import get_queue

    queue = get_queue(client, namespace, resources=[TPU])
    free = next((c.free for c in queue.capacity if c.resource == TPU), None)
    if free is None:
        raise RuntimeError(f"free {TPU} unknown in {namespace}: run as a user who may list pods")
    return int(free)


def prepare(client: Any, namespace: str) -> None:
    """The namespace (with its default ServiceAccount) and ant's PriorityClasses."""
    from ant.errors import AlreadyExists, NotFound
    from ant.jobs import priorities
    from ant.kube import resources as r

    priorities.install(client)
    ns = r.new(r.NAMESPACES)
    ns.metadata.name = namespace
    ns.metadata.labels["ant.dev/bench"] = "placement"
    with contextlib.suppress(AlreadyExists):
        client.create(r.NAMESPACES, ns)
    deadline = Deadline(60, f"the default ServiceAccount of {namespace}")
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    while True:
        try:
            client.transport.request("GET", path, accept="application/json")
            return
        except NotFound:
            deadline.sleep(0.2)


def fill(
    kubeconfig: Path,
    namespace: str,
    contexts: Sequence[str],
    clients: dict[str, Any],
    free: Mapping[str, int],
) -> dict[str, int]:
    """Never-ending 1 x 4-TPU jobs until each cluster has ``free[context]`` TPUs free;
    returns what is free then (a cluster already below its target gets none)."""
    for context in contexts:
        now = free_tpus(clients[context], namespace)
        for i in range(max(0, now - free[context]) // TPUS_PER_POD):
            argv = ["submit", "--name", f"fill-{i}", "--image", "busybox:1.36"]
            argv += ["--tpus", str(TPUS_PER_POD), "-o", "name", "--", "train"]
            where = ("--context", context)
            subprocess.run(
                ant_argv(kubeconfig, namespace, where, *argv),
                env=ant_env(),
                check=True,
                capture_output=True,
            )
    return settle(namespace, contexts, clients, free, "the fillers to run")


def settle(
    namespace: str,
    contexts: Sequence[str],
    clients: dict[str, Any],
    want: Mapping[str, int],
    what: str,
) -> dict[str, int]:
    """Wait (up to 3 minutes) until each cluster's free TPUs are ``want[context]`` or
    fewer; the free TPUs then."""
    deadline = Deadline(180, what)
    while True:
        free = {c: free_tpus(clients[c], namespace) for c in contexts}
        if all(free[c] <= want[c] for c in contexts) or deadline.expired():
            return free
        deadline.sleep(2.0, f"free TPUs {free}, want {dict(want)}")


def drained(namespace: str, contexts: Sequence[str], clients: dict[str, Any]) -> None:
    """Wait until no pod of a trace job holds TPUs (fillers are named fill-*)."""
    from ant.kube import resources as r

    deadline = Deadline(300, "the trace's pods to go")
    while True:
        live = [
            p.metadata.name
            for c in contexts
            for p in clients[c].list(r.PODS, namespace, label_selector=ANT_PODS).items
            if not p.metadata.name.startswith("fill-")
            and p.status.phase not in ("Succeeded", "Failed")
        ]
        if not live:
            return
        deadline.sleep(2.0, f"{len(live)} trace pods still live")


def remove_stranded(namespace: str, clients: dict[str, Any], stranded: Sequence[str]) -> None:
    """Delete the jobs that never started (``CLUSTER/NAME (...)``), so the next mode has
    the capacity the fillers leave."""
    from ant.jobs.lifecycle import delete_job

    for entry in stranded:
        cluster, name = entry.split(" ", 1)[0].rsplit("/", 1)
        if cluster in clients:
            delete_job(clients[cluster], namespace, name)


# ---- one mode ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    spawned: float
    wall: float
    code: int
    placed: str  # the cluster ant said it placed the job in ("" without --clusters)
    reason: str


def submit_one(argv: list[str], name: str) -> Submitted:
    spawned = time.monotonic()
    proc = subprocess.run(argv, env=ant_env(), capture_output=True, text=True, check=False)
    wall = time.monotonic() - spawned
    found = PLACING.search(proc.stderr)
    if proc.returncode != 0:
        log(f"{name}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    placed, reason = found.groups() if found else ("", "")
    return Submitted(spawned, wall, proc.returncode, placed, reason)


def replay(
    mode: str,
    jobs: list[TraceJob],
    kubeconfig: Path,
    namespace: str,
    where: Sequence[str],
    watch: PodWatch,
    specs: Path,
    timeout: float,
    stall: float,
) -> dict[str, Any]:
    names = {j.index: f"{mode[0]}{j.index}" for j in jobs}
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        futures = {}
        for j in jobs:
            time.sleep(max(0.0, start + j.submit_at - time.monotonic()))
            spec = specs / f"run-{j.run_seconds}.yaml"
            argv = ["submit", str(spec), "--name", names[j.index], "--replicas", str(j.replicas)]
            argv += ["--tpus", str(TPUS_PER_POD), "-o", "name"]
            full = ant_argv(kubeconfig, namespace, where, *argv)
            futures[j.index] = pool.submit(submit_one, full, names[j.index])
        submits = {i: f.result() for i, f in futures.items()}
    ok = [j for j in jobs if submits[j.index].code == 0]
    deadline = Deadline(timeout, f"{mode}: every job to finish")
    last_change, seen = time.monotonic(), (-1, -1)
    while True:
        finished = sum(1 for j in ok if watch.done(names[j.index], j.replicas))
        started = sum(1 for j in ok if watch.started(names[j.index], j.replicas))
        if finished == len(ok):
            break
        if (started, finished) != seen:
            last_change, seen = time.monotonic(), (started, finished)
        if time.monotonic() - last_change > stall:
            # Jobs that can never start where they were placed (a gang larger than what
            # will ever be free there): stranded, counted as never started.
            log(f"{mode}: no job moved for {stall:.0f}s: {len(ok) - started} stranded")
            break
        deadline.sleep(1.0, f"{len(ok) - finished} jobs not finished")
    result = metrics(jobs, names, submits, watch, start)
    stranded = [j for j in ok if not watch.done(names[j.index], j.replicas)]
    result["stranded"] = [
        f"{watch.cluster.get(names[j.index], '?')}/{names[j.index]} ({j.replicas} x 4 TPUs)"
        for j in stranded
    ]
    return result


def metrics(
    jobs: list[TraceJob],
    names: dict[int, str],
    submits: dict[int, Submitted],
    watch: PodWatch,
    start: float,
) -> dict[str, Any]:
    to_start: dict[int, float] = {}
    ends = []
    for j in jobs:
        began = watch.started(names[j.index], j.replicas)
        ended = watch.done(names[j.index], j.replicas)
        if began is not None:
            to_start[j.index] = began - submits[j.index].spawned
        if ended is not None:
            ends.append(ended)
    first = min(s.spawned for s in submits.values())
    by_cluster: dict[str, list[float]] = defaultdict(list)
    for i, seconds in to_start.items():
        by_cluster[watch.cluster.get(names[i], "?")].append(seconds)
    lag = [submits[j.index].spawned - (start + j.submit_at) for j in jobs]
    reasons = Counter(
        re.split(r" \(|;", s.reason, maxsplit=1)[0] for s in submits.values() if s.reason
    )
    return {
        "jobs": len(jobs),
        "submit_failed": sum(1 for s in submits.values() if s.code != 0),
        "started": len(to_start),
        "time_to_start_s": summarize(list(to_start.values())).as_dict(),
        "time_to_start_samples_s": sorted(round(v, 2) for v in to_start.values()),
        "makespan_s": round(max(ends, default=first) - first, 1),
        "submit_wall_s": summarize([s.wall for s in submits.values()]).as_dict(),
        "spawn_lag_p95_s": round(percentile(lag, 0.95), 2),
        "placed": dict(
            sorted(Counter(watch.cluster.get(names[j.index], "?") for j in jobs).items())
        ),
        "time_to_start_by_cluster_s": {
            c: {
                "n": len(v),
                "p50": round(percentile(v, 0.5), 2),
                "p95": round(percentile(v, 0.95), 2),
            }
            for c, v in sorted(by_cluster.items())
        },
        "reasons": dict(reasons.most_common()),
        # Jobs whose pods ran elsewhere than the cluster ant said it placed them in: 0.
        "placed_elsewhere_than_said": sum(
            1
            for j in jobs
            if submits[j.index].placed
            and submits[j.index].placed != watch.cluster.get(names[j.index])
        ),
    }


# ---- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    state = os.environ.get("ANT_DEVCLUSTER_STATE") or "~/.cache/ant/devcluster/state"
    parser = argparse.ArgumentParser(prog="python -m bench placement", description=__doc__)
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(state).expanduser() / "clusters.kubeconfig",
        help="the kubeconfig of `make cluster-up CLUSTERS=3` (its clusters.kubeconfig)",
    )
    parser.add_argument("--contexts", default="admin@dev-1,admin@dev-2,admin@dev-3")
    parser.add_argument("--free", default="8,16,32", help="free TPUs per cluster (8,16,32)")
    parser.add_argument("--one", default="", help="the cluster of mode one (most free)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the trace (200)")
    parser.add_argument("--duration", type=float, default=120, help="seconds of submits (120)")
    parser.add_argument("--run-min", type=int, default=1, help="seconds a job runs, least (1)")
    parser.add_argument("--run-max", type=int, default=5, help="seconds a job runs, most (5)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--modes", default=",".join(MODES), help="across,one")
    parser.add_argument("--timeout", type=float, default=900, help="per mode, seconds (900)")
    parser.add_argument(
        "--stall", type=float, default=60, help="give up on jobs when none moves this long (60 s)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the namespaces behind")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    import json

    from ant.kube.client import connect

    args = parse_args(argv)
    if not args.kubeconfig.is_file():
        raise SystemExit(
            f"bench: no {args.kubeconfig}: start the clusters (make cluster-up CLUSTERS=3)"
        )
    contexts = args.contexts.split(",")
    targets = dict(zip(contexts, (int(f) for f in args.free.split(",")), strict=True))
    clients = {c: connect(str(args.kubeconfig), c, env={}) for c in contexts}
    namespace = f"bench-place-{uuid.uuid4().hex[:6]}"
    for client in clients.values():
        prepare(client, namespace)
    jobs = trace(args.jobs, args.duration, args.run_min, args.run_max, args.seed)
    watch = PodWatch()
    for context, client in clients.items():
        watch.start(client, context, namespace)
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    result["load_average_before"] = os.getloadavg()
    try:
        free = fill(args.kubeconfig, namespace, contexts, clients, targets)
        log(f"namespace {namespace}; free TPUs {free}")
        result["free_tpus"] = free
        one = args.one or max(contexts, key=lambda c: free[c])
        with tempfile.TemporaryDirectory() as tmp:
            for seconds in {j.run_seconds for j in jobs}:
                spec = {
                    "image": "busybox:1.36",
                    "command": ["train"],
                    "podTemplate": {
                        "metadata": {"annotations": {"ant.dev/test-exit": f"0@{seconds}"}}
                    },
                }
                (Path(tmp) / f"run-{seconds}.yaml").write_text(json.dumps(spec))
            for mode in args.modes.split(","):
                where = (
                    ("--clusters", ",".join(contexts)) if mode == "across" else ("--context", one)
                )
                log(f"{mode}: {len(jobs)} jobs over {args.duration:.0f}s ({' '.join(where)})")
                result[mode] = replay(
                    mode,
                    jobs,
                    args.kubeconfig,
                    namespace,
                    where,
                    watch,
                    Path(tmp),
                    args.timeout,
                    args.stall,
                )
                result[mode]["where"] = " ".join(where)
                log(f"{mode}: {result[mode]}")
                remove_stranded(namespace, clients, result[mode]["stranded"])
                drained(namespace, contexts, clients)
        result["load_average_after"] = os.getloadavg()
    finally:
        watch.stop.set()
        if not args.keep:
            from ant.kube import resources as r

            for client in clients.values():
                client.delete(r.NAMESPACES, namespace)
    write_json(args.results_dir / "placement.json", result)
    print(report(result, [m for m in args.modes.split(",") if m in result]))
    return 0


def report(result: dict[str, Any], modes: Sequence[str]) -> str:
    rows = []
    for mode in modes:
        m = result[mode]
        t = m["time_to_start_s"]
        rows.append(
            [
                f"{mode} (`{m['where']}`)",
                f"{m['started']}/{m['jobs']}",
                f"{t['p50']:.1f} s",
                f"{t['p95']:.1f} s",
                f"{t['spread']:.2f}",
                f"{m['makespan_s']:.0f} s",
                ", ".join(f"{c}: {n}" for c, n in m["placed"].items()),
                f"{m['submit_wall_s']['p50']:.2f} / {m['submit_wall_s']['p95']:.2f} s",
            ]
        )
    headers = ["mode", "started", "time to start p50", "p95", "p95/p50", "makespan", "placed",
               "submit process p50 / p95"]  # fmt: skip
    return markdown_table(headers, rows)
