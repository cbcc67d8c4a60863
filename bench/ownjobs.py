"""``python -m bench ownjobs``: your own jobs among 10,000, and the 10,000-job list.

The cluster is seeded with N jobs (``bench.seed``: 100 users, so one user owns N/100),
an ``ant cache serve`` is started on loopback and waited for, then two parts run, each
as whole processes (spawn to exit, stdout and stderr drained), ``--runs`` interleaved
rounds after one warm-up, the order rotating each round:

* Own jobs: ``ant list -A --user U`` direct and through the cache, next to
  ``kubectl get statefulsets -A -l ant.dev/created-by=U`` (table and ``-o json``): the
  same selector on the same cluster. Goals (issue 15): ant's p50 <= 0.5x kubectl's, both
  ways; <= 0.20 s through the cache on an otherwise idle machine.
* The whole list: ``ant list -A --all-users -o wide`` (StatefulSets and pods, joined)
  and ``-o json``, next to the official Python client listing the same two kinds
  (``--big-runs`` rounds). Peak RSS is the child's ``ru_maxrss``; the body is the two
  protobuf lists' uncompressed size, fetched once. Goals: ant's wall <= 0.05x the
  official client's; peak RSS <= 1.5x the body.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant.kube import codec
from ant.kube import resources as r
from ant.kube.client import connect
from ant.kube.liststream import ListReader
from bench import seed, workload
from bench.cache import start_cache, wait_ready
from bench.common import (
    RESULTS_DIR,
    VENV_BIN,
    Cluster,
    add_cluster_options,
    find_cluster,
    fmt_bytes,
    fmt_ms,
    machine_info,
    markdown_table,
    summarize,
    write_json,
)

COMMAND_TIMEOUT = 600.0
GOAL_VS_KUBECTL = 0.5
GOAL_CACHE_SECONDS = 0.20
GOAL_VS_OFFICIAL = 0.05
GOAL_RSS_VS_BODY = 1.5
# As a user runs them: bytecode caches written and read.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

OFFICIAL_SCRIPT = """
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1], context=sys.argv[2])
api = client.ApiClient()
sts = client.AppsV1Api(api).list_stateful_set_for_all_namespaces(_request_timeout=600)
pods = client.CoreV1Api(api).list_pod_for_all_namespaces(_request_timeout=600)
print(len(sts.items), len(pods.items))
"""


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)


def run_once(command: Command) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one whole process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command.argv, stdout=out, stderr=err, env={**ENV, **command.env})
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{command.label} exited {proc.returncode}: {text}")
    return elapsed, usage.ru_maxrss * 1024


def measure(cmds: Sequence[Command], runs: int) -> dict[str, Samples]:
    samples = {c.label: Samples() for c in cmds}
    for command in cmds:
        run_once(command)  # warm-up
    for run in range(runs):
        shift = run % len(cmds)
        for command in [*cmds[shift:], *cmds[:shift]]:
            wall, rss = run_once(command)
            samples[command.label].wall.append(wall)
            samples[command.label].rss.append(rss)
        print(f"bench: round {run + 1}/{runs} done", file=sys.stderr, flush=True)
    return samples


def own_jobs_commands(cluster: Cluster, user: str, cache_env: dict[str, str]) -> list[Command]:
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context)
    ant = (str(VENV_BIN / "ant"), *kube, "list", "-A", "--user", user)
    kubectl = (str(cluster.kubectl), *kube, "get", "statefulsets", "-A", "-l")
    selector = f"ant.dev/created-by={user}"
    direct = {"ANT_CACHE_URL": "none"}
    return [
        Command(f"ant list -A --user {user}", ant, direct),
        Command(f"ant list -A --user {user} (through the cache)", ant, cache_env),
        Command(f"kubectl get sts -A -l {selector}", (*kubectl, selector)),
        Command(f"kubectl get sts -A -l {selector} -o json", (*kubectl, selector, "-o", "json")),
    ]


def big_list_commands(cluster: Cluster, official: bool) -> list[Command]:
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context)
    ant = (str(VENV_BIN / "ant"), *kube, "list", "-A", "--all-users")
    direct = {"ANT_CACHE_URL": "none"}
    out = [
        Command("ant list -A --all-users -o wide", (*ant, "-o", "wide"), direct),
        Command("ant list -A --all-users -o json", (*ant, "-o", "json"), direct),
    ]
    if official:
        out.append(
            Command(
                "official client: list StatefulSets and Pods (models)",
                (sys.executable, "-c", OFFICIAL_SCRIPT, str(cluster.kubeconfig), cluster.context),
            )
        )
    return out


def inventory(cluster: Cluster) -> dict[str, tuple[int, int]]:
    """Items and uncompressed protobuf body bytes of every StatefulSet and every Pod,
    counted as they stream by: this process stays small, since a child's ``ru_maxrss``
    starts from the size of the parent it was forked from."""
    client = connect(str(cluster.kubeconfig), cluster.context, timeout=600)
    client.transport.session.headers["Accept-Encoding"] = "identity"
    out = {}
    try:
        for res in (r.STATEFULSETS, r.PODS):
            sizes: list[int] = []
            with client.transport.stream(res.path(), accept=codec.PROTOBUF, chunk_size=1 << 20) as (
                _,
                chunks,
            ):
                items = sum(1 for _ in ListReader().items(_counted(chunks, sizes)))
            out[res.plural] = (items, sum(sizes))
    finally:
        client.transport.close()
    return out


def _counted(chunks: Iterator[bytes], sizes: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        sizes.append(len(chunk))
        yield chunk


def summary_rows(samples: dict[str, Samples], with_rss: bool) -> list[list[str]]:
    rows = []
    for label, got in samples.items():
        wall = summarize(got.wall)
        row = [f"`{label}`", fmt_ms(wall.p50), fmt_ms(wall.p95), f"{wall.spread:.2f}"]
        if with_rss:
            row.append(fmt_bytes(summarize(got.rss).p50))
        rows.append(row)
    return rows


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def own_goals(samples: dict[str, Samples], user: str) -> list[str]:
    p50 = {label: summarize(s.wall).p50 for label, s in samples.items()}
    direct, cached, kubectl, kubectl_json = (p50[c] for c in list(p50)[:4])
    best_kubectl = min(kubectl, kubectl_json)
    return [
        f"direct / kubectl: {direct / kubectl:.2f}x (vs -o json {direct / kubectl_json:.2f}x); "
        f"goal <= {GOAL_VS_KUBECTL}x: {verdict(direct / best_kubectl <= GOAL_VS_KUBECTL)}",
        f"through the cache / kubectl: {cached / kubectl:.2f}x (vs -o json "
        f"{cached / kubectl_json:.2f}x); goal <= {GOAL_VS_KUBECTL}x: "
        f"{verdict(cached / best_kubectl <= GOAL_VS_KUBECTL)}",
        f"through the cache: {fmt_ms(cached)} ms; goal <= {GOAL_CACHE_SECONDS * 1000:.0f} ms "
        f"(idle machine): {verdict(cached <= GOAL_CACHE_SECONDS)}",
    ]


def big_goals(samples: dict[str, Samples], body: int) -> list[str]:
    labels = list(samples)
    wide = samples[labels[0]]
    rss = max(wide.rss)
    out = [
        f"peak RSS of `{labels[0]}`: {fmt_bytes(rss)} (max over runs) = {rss / body:.2f}x the "
        f"{fmt_bytes(body)} protobuf body; goal <= {GOAL_RSS_VS_BODY}x: "
        f"{verdict(rss / body <= GOAL_RSS_VS_BODY)}",
    ]
    if len(labels) > 2:
        ratio = summarize(wide.wall).p50 / summarize(samples[labels[2]].wall).p50
        out.append(
            f"wall p50 `{labels[0]}` / official client: {ratio:.3f}x; goal <= "
            f"{GOAL_VS_OFFICIAL}x: {verdict(ratio <= GOAL_VS_OFFICIAL)}"
        )
    return out


def as_json(samples: dict[str, Samples]) -> dict[str, Any]:
    return {
        label: {"wall_s": summarize(s.wall).as_dict(), "rss_bytes": s.rss, "wall": s.wall}
        for label, s in samples.items()
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ownjobs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=10_000, help="jobs seeded (default: 10000)")
    parser.add_argument("--runs", type=int, default=15, help="own-jobs rounds (default: 15)")
    parser.add_argument("--big-runs", type=int, default=3, help="whole-list rounds (default: 3)")
    parser.add_argument(
        "--user", default=workload.USERS[0], help="whose jobs (default: %(default)s)"
    )
    parser.add_argument("--prefix", default="bench", help="seed prefix (default: bench)")
    parser.add_argument("--no-official", action="store_true", help="skip the official client")
    parser.add_argument(
        "--no-seed",
        action="store_true",
        help="measure the cluster as it is (no seeding, no waiting for pods)",
    )
    parser.add_argument("--seed-timeout", type=float, default=3600.0)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    add_cluster_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    client = connect(str(cluster.kubeconfig), cluster.context, timeout=600)
    try:
        if not args.no_seed:
            seeded = seed.seed(client, args.prefix, args.n, args.seed_timeout)
            print(f"bench: seeded N={args.n}: {seeded}", file=sys.stderr, flush=True)
    finally:
        client.transport.close()
    listed = inventory(cluster)
    counts = {plural: items for plural, (items, _) in listed.items()}
    body = sum(size for _, size in listed.values())
    with tempfile.TemporaryDirectory(prefix="ant-bench-ownjobs-") as work:
        cache = start_cache(cluster.kubeconfig, cluster.context, Path(work))
        try:
            synced = wait_ready(cache, 600)
            cache_env = {"ANT_CACHE_URL": cache.url, "ANT_CACHE_CA": cache.ca}
            load_before = os.getloadavg()[0]
            own = measure(own_jobs_commands(cluster, args.user, cache_env), args.runs)
            load_own = os.getloadavg()[0]
        finally:
            cache.stop()
    big = measure(big_list_commands(cluster, not args.no_official), args.big_runs)
    load_big = os.getloadavg()[0]
    result = {
        "n": args.n,
        "objects": counts,
        "user": args.user,
        "runs": args.runs,
        "big_runs": args.big_runs,
        "cache_sync_s": synced,
        "body_bytes": body,
        "own_jobs": as_json(own),
        "big_list": as_json(big),
        "load_average_1m": [load_before, load_own, load_big],
        "machine": machine_info(cluster),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # A child's ru_maxrss is at least this (it starts as a copy of this process).
        "self_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    write_json(args.results_dir / "ownjobs.json", result)
    headers = ["command", "p50 ms", "p95 ms", "p95/p50"]
    print(f"## Own jobs among {args.n:,} ({args.runs} interleaved runs after 1 warm-up)\n")
    print(markdown_table(headers, summary_rows(own, with_rss=False)))
    print("\n" + "\n".join(f"- {line}" for line in own_goals(own, args.user)))
    print(
        f"\n## The whole list: {counts['statefulsets']:,} StatefulSets, {counts['pods']:,} pods "
        f"({args.big_runs} interleaved runs after 1 warm-up)\n"
    )
    print(markdown_table([*headers, "peak RSS p50"], summary_rows(big, with_rss=True)))
    print("\n" + "\n".join(f"- {line}" for line in big_goals(big, body)))
    print(
        f"\n1-minute load average: {load_before:.1f} before, {load_own:.1f} after the own-jobs "
        f"part, {load_big:.1f} after the whole list; cache synced in {synced:.1f} s"
    )
    return 0
