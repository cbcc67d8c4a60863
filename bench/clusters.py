"""``ant list --all-clusters`` over several dev clusters against one cluster's list, and
the partial answer when one cluster's API server is down (docs/benchmarks.md).

Each cluster is seeded with ``--jobs`` bench jobs (``bench.seed``, reused between runs).
Timed: the whole ``ant`` process, ``-A --all-users -l <this run>`` (the table), p50 over
``--runs`` after one warm-up; on one cluster and across all, interleaved. Then, with
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
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import seed
from bench.common import REPO, RESULTS_DIR, VENV_BIN, fmt_ms, markdown_table, summarize, write_json

PREFIX = "mbench"
CLUSTER_TIMEOUT = "5s"


def timed_list(env: dict[str, str], *global_options: str) -> tuple[float, int, int]:
    """Seconds, exit code and stdout bytes of one ``ant list`` of the bench's jobs."""
    argv = [str(VENV_BIN / "ant"), *global_options, "list", "-A", "--all-users"]
    argv += ["-l", seed.run_selector(PREFIX)]  # the table: what people run
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.monotonic() - started
    return elapsed, proc.returncode, len(proc.stdout)


def measure(
    env: dict[str, str], runs: int, variants: dict[str, tuple[str, ...]]
) -> dict[str, dict[str, Any]]:
    """Each variant's lists (its global options), interleaved: one run of every variant
    per round, the order turned each round, so all meet the same background load."""
    for options in variants.values():
        timed_list(env, *options)  # warm-up: identity cache, page cache
    samples: dict[str, list[tuple[float, int, int]]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(runs):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            samples[name].append(timed_list(env, *variants[name]))
    return {
        name: {
            "seconds": summarize([s for s, _, _ in taken]).as_dict(),
            "exit_codes": sorted({code for _, code, _ in taken}),
            "bytes": taken[-1][2],
        }
        for name, taken in samples.items()
    }


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
    measured = measure(
        env, args.runs, {"one": ("--context", contexts[0]), "across": ("--all-clusters",)}
    )
    one, across = measured["one"], measured["across"]
    results: dict[str, Any] = {"jobs_per_cluster": args.jobs, "clusters": args.count}
    results |= {"seeding": seeded, "one": one, "across": across}

    if args.down_state:
        script = str(REPO / "devcluster" / "cluster.py")
        down = subprocess.Popen(
            [sys.executable, script, "restart-apiserver", "--down-seconds", str(args.down_seconds)],
            env={**os.environ, "ANT_DEVCLUSTER_STATE": str(args.down_state)},
        )
        time.sleep(3)  # the kill comes first, then the long pause: lists run inside it
        partial = [timed_list(env, "--all-clusters") for _ in range(args.runs)]
        down.wait()
        results["partial"] = {
            "seconds": summarize([s for s, _, _ in partial]).as_dict(),
            "exit_codes": sorted({code for _, code, _ in partial}),
            "cluster_timeout": CLUSTER_TIMEOUT,
        }

    write_json(args.results_dir / "clusters.json", results)
    if args.cleanup:  # the shared dev cluster is dev-1: leave it as it was
        with ThreadPoolExecutor(len(contexts)) as pool:
            list(pool.map(lambda c: seed.cleanup(clients[c], PREFIX, args.seed_timeout), contexts))
    rows = [
        [
            "one cluster",
            f"{args.jobs}",
            fmt_ms(one["seconds"]["p50"]),
            fmt_ms(one["seconds"]["p95"]),
        ],
        [
            f"--all-clusters ({args.count})",
            f"{args.jobs * args.count}",
            fmt_ms(across["seconds"]["p50"]),
            fmt_ms(across["seconds"]["p95"]),
        ],
    ]
    if "partial" in results:
        p = results["partial"]["seconds"]
        rows.append(
            [
                "--all-clusters, one down",
                f"{args.jobs * (args.count - 1)}",
                fmt_ms(p["p50"]),
                fmt_ms(p["p95"]),
            ]
        )
    print(markdown_table(["list", "jobs", "p50", "p95"], rows))
    ratio = across["seconds"]["p50"] / one["seconds"]["p50"]
    print(
        f"\nacross / one (p50): {ratio:.2f}x; exit codes: one {one['exit_codes']}, "
        f"across {across['exit_codes']}, partial {results.get('partial', {}).get('exit_codes')}"
    )
    return 0
