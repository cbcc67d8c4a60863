"""``ant list --all-clusters`` over several dev clusters against one cluster's list, and
the partial answer when one cluster's API server is down (docs/benchmarks.md).

Each cluster is seeded with ``--jobs`` bench jobs (``bench.seed``, reused between runs).
Timed: the whole ``ant`` process, ``-A --all-users -l <this run>`` (the table), p50 over
``--runs`` after one warm-up; on one cluster and across all, interleaved; with
``--caches``, also both through an ``ant cache serve`` per cluster (each context's
``ant.dev/cache``). Each list's CPU is counted too: the ``ant`` process's, and that of
every cluster's API server and etcd (and cache), which share this machine's CPUs. Then, with
``--down-state STATE``, that cluster's API server is killed (``cluster.py
restart-apiserver --down-seconds``) and the lists across all run while it is down: each
must exit 10 (PARTIAL) within the per-cluster timeout.

    make cluster-up CLUSTERS=3
    .venv/bin/python -m bench clusters --jobs 1000 --down-state ~/.cache/ant/devcluster/state-3

The clusters are seeded at once; ``--cleanup`` deletes the bench jobs afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import seed
from bench.cache import CacheProcess, start_cache, wait_ready
from bench.common import (
    REPO,
    RESULTS_DIR,
    VENV_BIN,
    fmt_ms,
    markdown_table,
    process_cpu_seconds,
    summarize,
    write_json,
)

PREFIX = "mbench"
CLUSTER_TIMEOUT = "5s"


@dataclass(frozen=True)
class Taken:
    """One list: wall seconds, exit code, stdout bytes, and CPU seconds of the ``ant``
    process and of the servers (API servers, etcd, caches) while it ran."""

    seconds: float
    code: int
    stdout_bytes: int
    client_cpu: float
    server_cpu: float


def timed_list(env: dict[str, str], servers: Sequence[int], *global_options: str) -> Taken:
    """One ``ant list`` of the bench's jobs; ``servers``: the PIDs whose CPU counts."""
    argv = [str(VENV_BIN / "ant"), *global_options, "list", "-A", "--all-users"]
    argv += ["-l", seed.run_selector(PREFIX)]  # the table: what people run
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = sum(process_cpu_seconds(pid) for pid in servers)
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server = sum(process_cpu_seconds(pid) for pid in servers) - server_before
    return Taken(elapsed, proc.returncode, len(proc.stdout), client, server)


@dataclass(frozen=True)
class Variant:
    env: dict[str, str]
    options: tuple[str, ...]


def measure(
    variants: dict[str, Variant], servers: Sequence[int], runs: int
) -> dict[str, dict[str, Any]]:
    """Each variant's lists, interleaved: one run of every variant per round, the order
    turned each round, so all meet the same background load."""
    for v in variants.values():
        timed_list(v.env, servers, *v.options)  # warm-up: identity cache, page cache
    samples: dict[str, list[Taken]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(runs):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            v = variants[name]
            samples[name].append(timed_list(v.env, servers, *v.options))
    return {
        name: {
            "seconds": summarize([t.seconds for t in taken]).as_dict(),
            "rounds": [t.seconds for t in taken],  # in round order: ratios pair them
            "client_cpu": summarize([t.client_cpu for t in taken]).as_dict(),
            "server_cpu": summarize([t.server_cpu for t in taken]).as_dict(),
            "exit_codes": sorted({t.code for t in taken}),
            "bytes": taken[-1].stdout_bytes,
        }
        for name, taken in samples.items()
    }


def server_pids(states: Sequence[Path]) -> list[int]:
    """Each dev cluster's API server and etcd (their pid files under STATE/run)."""
    return [
        int((state / "run" / f"{name}.pid").read_text())
        for state in states
        for name in ("kube-apiserver", "etcd")
    ]


def with_caches(kubeconfig: Path, caches: dict[str, CacheProcess], out: Path) -> Path:
    """A copy of ``kubeconfig`` whose contexts name their cache (``ant.dev/cache``)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["contexts"]:
        cache = caches.get(entry["name"])
        if cache is not None:
            extension = {"url": cache.url, "certificate-authority": cache.ca}
            entry["context"]["extensions"] = [{"name": "ant.dev/cache", "extension": extension}]
    out.write_text(yaml.safe_dump(config))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench clusters", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="clusters.kubeconfig")
    parser.add_argument("--count", type=int, default=3, help="clusters dev-1..dev-COUNT")
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per cluster")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--down-state", type=Path, help="state dir of the cluster to take down")
    parser.add_argument("--down-seconds", type=float, default=60.0)
    parser.add_argument("--seed-timeout", type=float, default=3600.0)
    parser.add_argument("--cleanup", action="store_true", help="delete the bench jobs after")
    parser.add_argument(
        "--caches", action="store_true", help="also list through an ant cache per cluster"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    from ant.kube.client import connect

    contexts = [f"admin@dev-{i}" for i in range(1, args.count + 1)]
    clients = {c: connect(str(args.kubeconfig), c, env={}) for c in contexts}

    def seeded_in(context: str) -> dict[str, Any]:
        report = seed.seed(clients[context], PREFIX, args.jobs, args.seed_timeout).as_dict()
        print(f"bench: {context}: {report}", file=sys.stderr, flush=True)
        return report

    # Every cluster at once: each seeding waits on its own API server much of the time.
    with ThreadPoolExecutor(len(contexts)) as pool:
        seeded = dict(zip(contexts, pool.map(seeded_in, contexts), strict=True))

    env = {**os.environ, "KUBECONFIG": str(args.kubeconfig), "NO_COLOR": "1"}
    env["ANT_CLUSTER_TIMEOUT"] = CLUSTER_TIMEOUT
    env.pop("ANT_CACHE_URL", None)
    env["ANT_CLUSTERS"] = ",".join(contexts)  # --context still means that one cluster
    variants = {
        "one": Variant(env, ("--context", contexts[0])),
        "across": Variant(env, ("--all-clusters",)),
    }
    # The dev clusters' state dirs: STATE (dev-1, the kubeconfig's), STATE-2, STATE-3, ...
    first = args.kubeconfig.parent
    states = [first] + [first.with_name(f"{first.name}-{i}") for i in range(2, args.count + 1)]
    servers = server_pids(states)
    caches: dict[str, CacheProcess] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-clusters-"))
    try:
        if args.caches:
            caches = {c: start_cache(args.kubeconfig, c, work) for c in contexts}
            ready = {c: wait_ready(cache, args.seed_timeout) for c, cache in caches.items()}
            print(f"bench: caches ready after {ready}", file=sys.stderr, flush=True)
            cached = {**env, "KUBECONFIG": str(with_caches(args.kubeconfig, caches, work / "kc"))}
            variants["one, caches"] = Variant(cached, ("--context", contexts[0]))
            variants["across, caches"] = Variant(cached, ("--all-clusters",))
        measured = measure(variants, servers + [c.proc.pid for c in caches.values()], args.runs)
    finally:
        for cache in caches.values():
            cache.stop()
    results: dict[str, Any] = {"jobs_per_cluster": args.jobs, "clusters": args.count}
    results |= {"seeding": seeded, "cpus": os.cpu_count(), "lists": measured}

    if args.down_state:
        script = str(REPO / "devcluster" / "cluster.py")
        down = subprocess.Popen(
            [sys.executable, script, "restart-apiserver", "--down-seconds", str(args.down_seconds)],
            env={**os.environ, "ANT_DEVCLUSTER_STATE": str(args.down_state)},
        )
        time.sleep(3)  # the kill comes first, then the long pause: lists run inside it
        partial = [timed_list(env, (), "--all-clusters") for _ in range(args.runs)]
        down.wait()
        results["partial"] = {
            "seconds": summarize([t.seconds for t in partial]).as_dict(),
            "exit_codes": sorted({t.code for t in partial}),
            "cluster_timeout": CLUSTER_TIMEOUT,
        }

    write_json(args.results_dir / "clusters.json", results)
    if args.cleanup:  # the shared dev cluster is dev-1: leave it as it was
        with ThreadPoolExecutor(len(contexts)) as pool:
            list(pool.map(lambda c: seed.cleanup(clients[c], PREFIX, args.seed_timeout), contexts))
    jobs = {"one": args.jobs, "across": args.jobs * args.count}
    rows = [
        [
            name,
            f"{jobs[name.split(',')[0]]}",
            fmt_ms(m["seconds"]["p50"]),
            fmt_ms(m["seconds"]["p95"]),
            f"{m['seconds']['spread']:.2f}",
            fmt_ms(m["client_cpu"]["p50"]),
            fmt_ms(m["server_cpu"]["p50"]),
            ",".join(map(str, m["exit_codes"])),
        ]
        for name, m in measured.items()
    ]
    if "partial" in results:
        p = results["partial"]["seconds"]
        rows.append(
            [
                "across, one down",
                f"{args.jobs * (args.count - 1)}",
                fmt_ms(p["p50"]),
                fmt_ms(p["p95"]),
                f"{p['spread']:.2f}",
                "",
                "",
                ",".join(map(str, results["partial"]["exit_codes"])),
            ]
        )
    header = ["list", "jobs", "p50", "p95", "p95/p50", "ant CPU p50", "servers' CPU p50", "exit"]
    print(markdown_table(header, rows))
    for suffix in ("", ", caches"):
        if f"across{suffix}" in measured:
            across, one = measured[f"across{suffix}"], measured[f"one{suffix}"]
            ratio = across["seconds"]["p50"] / one["seconds"]["p50"]
            # A round's two lists ran seconds apart: their ratio is not moved by the
            # machine getting quicker or slower between rounds, as a ratio of p50s is.
            paired = summarize(
                [a / o for a, o in zip(across["rounds"], one["rounds"], strict=True)]
            )
            print(
                f"across / one{suffix}: {ratio:.2f}x (p50s); each round's, p50 "
                f"{paired.p50:.2f}x, p95 {paired.p95:.2f}x"
            )
    return 0
