"""``python -m bench gangs``: one churn trace of gang jobs, replayed without gangs, with
PodGroups and with Kueue, on the dev cluster's pool (8 nodes x 4 TPUs).

The trace (seeded, so every mode replays the same one): ``--jobs`` jobs of 1-8 replicas
x 4 TPUs at three priorities, submitted at random times over ``--duration`` seconds.
A job is deleted ``run`` seconds after all its replicas run (its work done), or, if it
never gets there, ``patience`` seconds after submission (its researcher gives up); both
drawn per job from the trace, so the rule is the same in every mode.

A watcher records every binding and every pod deletion (one pod watch); from them:

- partial-gang TPU-seconds: TPUs held by jobs that have some but not all replicas bound,
  integrated over time until the job is deleted (idle accelerators: the waste gangs
  exist to remove; the teardown after a delete is not counted). Of them, *stranded*:
  held by jobs that never had all their replicas bound (a gang admitted in part: what
  gangs exist to prevent); *disrupted*: held by a whole job losing its pods one after
  another (preempted or evicted); the rest is the milliseconds in which a gang's pods
  are bound one by one;
- utilisation: TPU-seconds bound / (32 x the trace's span); useful: the same without the
  partial-gang TPU-seconds;
- submit -> all replicas running, p50/p95, over the jobs that got there (and how many
  gave up); bind spread: from a job's first pod bound to its last, p50 and max;
- capacity freed -> next gang fully running: after each job's deletion while others
  wait, the time until the next job has all its replicas bound.

Modes: ``none`` (``--no-gang``), ``podgroup`` and ``kueue`` (the dev cluster's LocalQueue
in namespace ``queued``: ``cluster.py up --kueue``). Results: bench/results/gangs-N.json
and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    RESULTS_DIR,
    add_cluster_options,
    find_cluster,
    markdown_table,
    percentile,
    write_json,
)

MODES = ("none", "podgroup", "kueue")
TPUS_PER_POD = 4
POOL_TPUS = 32
PRIORITIES = ("opportunistic", "normal", "high")
NAMESPACE = "bench-gangs"
KUEUE_NAMESPACE = "queued"
KUEUE_QUEUE = "tpu"


@dataclass(frozen=True)
class TraceJob:
    index: int
    replicas: int
    priority: str
    submit_at: float  # seconds from the start
    run: float  # seconds it runs once whole
    patience: float  # seconds after submission it is given up if never whole


def trace(jobs: int, duration: float, seed: int) -> list[TraceJob]:
    rng = random.Random(seed)
    scale = duration / 180  # times are drawn for a 3-minute trace, then scaled
    out = [
        TraceJob(
            index=i,
            replicas=rng.randint(1, 8),
            priority=rng.choices(PRIORITIES, weights=(4, 4, 2))[0],
            submit_at=rng.uniform(0, duration),
            run=rng.uniform(5, 25) * scale,
            patience=rng.uniform(40, 90) * scale,
        )
        for i in range(jobs)
    ]
    return sorted(out, key=lambda j: j.submit_at)


@dataclass
class Watcher:
    """Every binding and pod deletion in a namespace, with when it was seen."""

    bound: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    intervals: list[tuple[str, float, float]] = field(default_factory=list)  # job, bound, gone
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, client: Any, namespace: str) -> None:
        from ant.kube import resources as r
        from ant.kube.watch import follow

        listed = client.list(r.PODS, namespace, label_selector="ant.dev/managed-by=ant")
        for event in follow(
            client,
            r.PODS,
            listed.resource_version,
            namespace,
            label_selector="ant.dev/managed-by=ant",
            stop=self.stop,
        ):
            if event.type == "BOOKMARK":
                continue
            pod, now = event.object, time.monotonic()
            job, uid = pod.metadata.labels.get("ant.dev/job", ""), pod.metadata.uid
            gone = event.type == "DELETED" or pod.metadata.HasField("deletionTimestamp")
            with self.lock:
                if gone and uid in self.bound[job]:
                    self.intervals.append((job, self.bound[job].pop(uid), now))
                elif not gone and pod.spec.nodeName and uid not in self.bound[job]:
                    self.bound[job][uid] = now

    def count(self, job: str) -> int:
        with self.lock:
            return len(self.bound[job])

    def finish(self, now: float) -> list[tuple[str, float, float]]:
        with self.lock:
            still = [(job, t, now) for job, pods in self.bound.items() for t in pods.values()]
            return self.intervals + still


def replay(client: Any, mode: str, jobs: list[TraceJob], run_id: str) -> dict[str, Any]:
    """Submit and delete the trace's jobs in one mode; the metrics from the watcher."""
    from ant.jobs import gang as gangs
    from ant.jobs import lifecycle, manifest, submission
    from ant.jobs.documents import rfc3339
    from ant.jobs.identity import whoami
    from ant.jobs.spec import JobSpec

    namespace = KUEUE_NAMESPACE if mode == "kueue" else NAMESPACE
    if mode == "kueue":  # the WorkloadPriorityClasses its jobs name
        from ant.jobs import kueue_setup

        planned = kueue_setup.plan([], cluster_queue="-", local_queue="-", namespaces=())
        wpcs = [p for p in planned if p.resource.kind == "WorkloadPriorityClass"]
        kueue_setup.install(client, wpcs, dry_run=False)
    identity = whoami(client)
    watcher = Watcher()
    thread = threading.Thread(target=watcher.run, args=(client, namespace), daemon=True)
    thread.start()
    time.sleep(1.0)  # the watch is established (its LIST answered) before the first submit
    names = {j.index: f"g{run_id}-{mode[0]}{j.index}" for j in jobs}
    submitted: dict[int, float] = {}
    whole: dict[int, float] = {}
    deleted: dict[int, float] = {}
    start = time.monotonic()
    pending = list(jobs)
    while len(deleted) < len(jobs):
        now = time.monotonic() - start
        while pending and pending[0].submit_at <= now:
            j = pending.pop(0)
            spec = JobSpec(
                name=names[j.index],
                image="busybox:1.36",
                replicas=j.replicas,
                priority=j.priority,
                resources={"google.com/tpu": str(TPUS_PER_POD)},
            )
            gang = (
                None
                if mode == "none"
                else gangs.choose(
                    gangs.GangRequest(queue=KUEUE_QUEUE if mode == "kueue" else ""),
                    j.replicas,
                    lambda: True,
                )
            )
            provenance = manifest.Provenance(identity, rfc3339(datetime.now(UTC)), "bench")
            built = manifest.build(spec, names[j.index], namespace, provenance, gang)
            submission.submit(client, built, j.priority, preflight=False)
            submitted[j.index] = time.monotonic()
        for j in jobs:
            i = j.index
            if i not in submitted or i in deleted:
                continue
            t = time.monotonic()
            if i not in whole and watcher.count(names[i]) >= j.replicas:
                whole[i] = t
            due = whole[i] + j.run if i in whole else submitted[i] + j.patience
            if t >= due:
                lifecycle.delete_job(client, namespace, names[i])
                deleted[i] = t
        time.sleep(0.1)
    end = time.monotonic()
    lifecycle.wait_gone(client, namespace, list(names.values()), timeout=300)
    watcher.stop.set()
    return metrics(jobs, names, submitted, whole, deleted, watcher.finish(end), start, end)


def metrics(
    jobs: list[TraceJob],
    names: dict[int, str],
    submitted: dict[int, float],
    whole: dict[int, float],
    deleted: dict[int, float],
    intervals: list[tuple[str, float, float]],
    start: float,
    end: float,
) -> dict[str, Any]:
    replicas = {names[j.index]: j.replicas for j in jobs}
    # Partial counts while a job waits, not while it is torn down after its delete.
    teardown = {names[i]: t for i, t in deleted.items()}
    # Sweep the bind/unbind events in time order, per job: partial while 0 < bound < want.
    events = sorted(
        [(t0, +1, job) for job, t0, _ in intervals] + [(t1, -1, job) for job, _, t1 in intervals]
    )
    held: dict[str, int] = defaultdict(int)
    partial_tpu_s = bound_tpu_s = stranded_tpu_s = disrupted_tpu_s = 0.0
    # A partial episode (0 < bound < want) ends whole (the binding of a gang, pod after
    # pod) or not. One that does not began either from nothing (pods bound to a job that
    # never had them all: stranded accelerators, what gangs exist to prevent) or from a
    # whole job losing pods (its preemption or eviction, pod after pod: disrupted).
    episode: dict[str, float] = defaultdict(float)
    from_whole: dict[str, bool] = {}
    last = start
    for when, delta, job in events:
        t = min(max(when, start), end)
        dt = t - last
        bound_tpu_s += dt * TPUS_PER_POD * sum(held.values())
        for name, n in held.items():
            if 0 < n < replicas.get(name, 0) and t <= teardown.get(name, end):
                partial_tpu_s += dt * TPUS_PER_POD * n
                episode[name] += dt * TPUS_PER_POD * n
        was = held[job]
        held[job] += delta
        want = replicas.get(job, 0)
        if not 0 < was < want and 0 < held[job] < want:  # an episode begins
            from_whole[job] = was >= want
        if 0 < was < want and not 0 < held[job] < want:  # the episode ends
            if held[job] < want:
                if from_whole.get(job):
                    disrupted_tpu_s += episode[job]
                else:
                    stranded_tpu_s += episode[job]
            episode[job] = 0.0
        last = t
    for job, tpu_s in episode.items():  # still partial at the end
        if from_whole.get(job):
            disrupted_tpu_s += tpu_s
        else:
            stranded_tpu_s += tpu_s
    to_whole = [whole[i] - submitted[i] for i in whole]
    # How long a job took to bind from its first pod to its last (the first `replicas`
    # binds): with a gang, the moment of binding; without, the wait for the stragglers.
    binds: dict[str, list[float]] = defaultdict(list)
    for job, t0, _ in intervals:
        binds[job].append(t0)
    spread = [
        sorted(binds[names[i]])[replicas[names[i]] - 1] - min(binds[names[i]])
        for i in whole
        if len(binds[names[i]]) >= replicas[names[i]] > 1
    ]
    freed_latency = []
    for t in sorted(deleted.values()):
        # Jobs waiting when capacity was freed: the first of them to become whole.
        waiting = [
            k for k in submitted if submitted[k] < t < deleted[k] and whole.get(k, end + 1) > t
        ]
        later = [whole[k] for k in waiting if k in whole]
        if later:
            freed_latency.append(min(later) - t)
    return {
        "jobs": len(jobs),
        "whole": len(whole),
        "gave_up": len(jobs) - len(whole),
        "span_seconds": round(end - start, 1),
        "partial_gang_tpu_seconds": round(partial_tpu_s, 1),
        # Of those: held by jobs that never had all their replicas (stranded), and by
        # whole jobs losing their pods one after another (disrupted); the rest is the
        # binding of gangs that became whole.
        "stranded_tpu_seconds": round(stranded_tpu_s, 1),
        "disrupted_tpu_seconds": round(disrupted_tpu_s, 1),
        "utilisation": round(bound_tpu_s / (POOL_TPUS * (end - start)), 3),
        # Bound TPUs of jobs that have all their replicas: work that can progress.
        "useful_utilisation": round((bound_tpu_s - partial_tpu_s) / (POOL_TPUS * (end - start)), 3),
        "bind_spread_p50": round(percentile(spread, 0.5), 3),
        "bind_spread_max": round(max(spread, default=0.0), 3),
        "submit_to_running_p50": round(percentile(to_whole, 0.5), 2),
        "submit_to_running_p95": round(percentile(to_whole, 0.95), 2),
        "freed_to_next_gang_p50": round(percentile(freed_latency, 0.5), 2),
        "freed_to_next_gang_p95": round(percentile(freed_latency, 0.95), 2),
        "freed_samples": len(freed_latency),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gangs", description=__doc__)
    add_cluster_options(parser)
    parser.add_argument("--jobs", type=int, default=100, help="jobs in the trace (100)")
    parser.add_argument("--duration", type=float, default=180, help="seconds of submits (180)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--modes", default=",".join(MODES), help="none,podgroup,kueue")
    parser.add_argument("--results-dir", type=str, default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    from pathlib import Path

    from ant.kube.client import connect

    cluster = find_cluster(args)
    client = connect(str(cluster.kubeconfig), cluster.context, env={})
    _namespace(client, NAMESPACE)
    _priorities(client)
    jobs = trace(args.jobs, args.duration, args.seed)
    run_id = f"{int(time.time()) % 100000}"
    results = {}
    for mode in args.modes.split(","):
        if mode == "kueue" and not _kueue_running(client):
            print("# kueue: skipped, no LocalQueue tpu in queued (cluster.py up --kueue)")
            continue
        print(f"# replaying {len(jobs)} jobs over {args.duration:.0f}s: {mode}", flush=True)
        results[mode] = replay(client, mode, jobs, run_id)
        print(results[mode], flush=True)
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(
        Path(args.results_dir) / f"gangs-{args.jobs}.json",
        {"args": settings, "results": results},
    )
    rows = [
        [
            mode,
            f"{r['partial_gang_tpu_seconds']:,.1f}",
            f"{r['stranded_tpu_seconds']:,.1f} / {r['disrupted_tpu_seconds']:,.1f}",
            f"{r['utilisation']:.0%} ({r['useful_utilisation']:.0%})",
            f"{r['whole']}/{r['jobs']}",
            f"{r['submit_to_running_p50']:.1f} / {r['submit_to_running_p95']:.1f}",
            f"{r['freed_to_next_gang_p50']:.1f} / {r['freed_to_next_gang_p95']:.1f}"
            f" ({r['freed_samples']})",
        ]
        for mode, r in results.items()
    ]
    headers = ["mode", "partial-gang TPU·s", "of them stranded / disrupted",
               "utilisation (useful)", "ran whole", "submit→all running p50/p95 (s)",
               "freed→next gang p50/p95 (s, n)"]  # fmt: skip
    print(markdown_table(headers, rows))
    return 0


def _priorities(client: Any) -> None:
    """ant's PriorityClasses, which a fresh dev cluster lacks (idempotent; mode kueue
    installs its WorkloadPriorityClasses itself)."""
    from ant.jobs import priorities

    priorities.install(client)


def _namespace(client: Any, name: str) -> None:
    from ant.errors import AlreadyExists
    from ant.kube import resources as r

    namespace = r.new(r.NAMESPACES)
    namespace.metadata.name = name
    with suppress(AlreadyExists):
        client.create(r.NAMESPACES, namespace)


def _kueue_running(client: Any) -> bool:
    from ant.errors import AntError
    from ant.kube import resources as r

    try:
        client.get(r.LOCAL_QUEUES, KUEUE_QUEUE, KUEUE_NAMESPACE)
    except AntError:
        return False
    return True
