"""``python -m bench sweep``: submit a 500-job sweep with the real CLI, and what it costs.

In a namespace of its own (created and deleted again as admin), on the dev cluster:

1. ``ant submit spec.yaml --sweep a=... --sweep b=... -o name``: ``--jobs`` jobs (busybox,
   1 replica, no TPUs, opportunistic) as one sweep, timed as a whole process from spawn to
   exit. It runs with ``-vv``, so every API request is logged on stderr (method, URL,
   status, milliseconds): that is how the calls are counted and the server's latency
   summarised. The log costs a few milliseconds for ~1,000 lines.
2. ``ant list --sweep ID -o name`` and ``ant delete --sweep ID --yes``, timed the same way.
3. The baseline the issue compares against: ``--baseline`` single ``ant submit`` processes
   in a row (each asks who you are, checks the PriorityClass, dry-runs both objects and
   creates them), extrapolated to ``--jobs``.

The StatefulSet controller starts creating the sweep's pods while the sweep is still
being submitted, as it would in real life; the pods (no TPUs) land on the kwok pool.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    VENV_BIN,
    Cluster,
    Deadline,
    add_cluster_options,
    find_cluster,
    machine_info,
    markdown_table,
    summarize,
    write_json,
)

COMMAND_TIMEOUT = 600.0
# `-vv` logs each request as "ant.kube.transport: METHOD URL STATUS 12.3ms".
REQUEST_LINE = re.compile(r"^ant\.kube\.transport: (\w+) (\S+) (\d{3}) ([\d.]+)ms$")
RESOURCE = re.compile(r"/(?:api|apis/[^/]+)/v1/(?:namespaces/[^/]+/)?([a-z]+)")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__)
    add_cluster_options(parser)
    parser.add_argument("--jobs", type=int, default=500, help="jobs in the sweep (default 500)")
    parser.add_argument(
        "--baseline", type=int, default=10, help="single `ant submit` runs to compare (default 10)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true", help="leave the namespace behind")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def sweep_flags(jobs: int) -> list[str]:
    """Two --sweep flags whose cross product is ``jobs`` (a x b, as square as divides)."""
    a = max(d for d in range(1, int(jobs**0.5) + 1) if jobs % d == 0)
    b = jobs // a
    return [
        "--sweep",
        "lr=" + ",".join(f"{i + 1}e-4" for i in range(b)),
        "--sweep",
        "seed=" + ",".join(str(i) for i in range(a)),
    ]


def ant(cluster: Cluster, namespace: str, *args: str, verbose: bool = True) -> dict[str, Any]:
    """Run the ant console script; wall time, exit code, stdout and the requests it logged."""
    argv = [
        str(VENV_BIN / "ant"),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--context",
        cluster.context,
        "-n",
        namespace,
        *(["-vv"] if verbose else []),
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANT_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=env, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    requests = []
    for line in proc.stderr.splitlines():
        found = REQUEST_LINE.match(line)
        if found:
            method, url, status, ms = found.groups()
            kind = RESOURCE.search(url)
            dry = "dryRun=All" in url
            requests.append(
                {
                    "method": method,
                    "resource": (kind.group(1) if kind else url) + (" (dry run)" if dry else ""),
                    "status": int(status),
                    "ms": float(ms),
                }
            )
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stderr.splitlines()[-5:])
        raise RuntimeError(f"{' '.join(args[:2])} exited {proc.returncode}:\n{tail}")
    return {"wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout, "requests": requests}


def calls(requests: Sequence[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(f"{r['method']} {r['resource']}" for r in requests).items()))


def admin_client(cluster: Cluster) -> Any:
    from ant.kube.client import connect

    return connect(str(cluster.kubeconfig), cluster.context, env={})


def create_namespace(cluster: Cluster, name: str) -> None:
    from ant.kube import resources as r

    client = admin_client(cluster)
    ns = r.new(r.NAMESPACES)
    ns.metadata.name = name
    ns.metadata.labels["ant.dev/bench"] = "sweep"
    client.create(r.NAMESPACES, ns)
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = Deadline(60, f"the default ServiceAccount of {name}")
    while not _has_default_service_account(client, name):
        deadline.sleep(0.2)


def _has_default_service_account(client: Any, namespace: str) -> bool:
    from ant.errors import NotFound

    try:
        client.transport.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/default",
            accept="application/json",
        )
    except NotFound:
        return False
    return True


def delete_namespace(cluster: Cluster, name: str) -> float:
    """Delete the namespace and wait until it is gone; the seconds that took."""
    from ant.errors import NotFound
    from ant.kube import resources as r

    client = admin_client(cluster)
    started = time.perf_counter()
    client.delete(r.NAMESPACES, name)
    deadline = Deadline(300, f"namespace {name} to be deleted")
    while True:
        try:
            client.get(r.NAMESPACES, name)
        except NotFound:
            return time.perf_counter() - started
        deadline.sleep(1.0)


def ensure_priorities(cluster: Cluster) -> None:
    from ant.jobs import priorities

    priorities.install(admin_client(cluster))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    ensure_priorities(cluster)
    namespace = f"bench-sweep-{uuid.uuid4().hex[:6]}"
    create_namespace(cluster, namespace)
    log(f"namespace {namespace}")
    # The dev VM is shared: the load says how much of the machine the cluster had.
    result: dict[str, Any] = {
        "jobs": args.jobs,
        "namespace": namespace,
        "load_average_before": os.getloadavg(),
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "job.yaml"
            spec.write_text(
                json.dumps(
                    {
                        "name": "sw",
                        "image": "busybox:1.36",
                        "replicas": 1,
                        "priority": "opportunistic",
                        "command": ["sleep", "infinity"],
                    }
                )
            )
            log(f"submitting a sweep of {args.jobs} jobs")
            submitted = ant(
                cluster, namespace, "submit", str(spec), *sweep_flags(args.jobs), "-o", "name"
            )
            names = submitted["stdout"].split()
            if len(names) != args.jobs:
                raise RuntimeError(f"the sweep printed {len(names)} names, not {args.jobs}")
            sweep_id = names[0].split("-")[1]
            creates = [r["ms"] for r in submitted["requests"] if r["method"] == "POST"]
            result["submit"] = {
                "wall_s": submitted["wall_s"],
                "client_cpu_s": submitted["cpu_s"],
                "api_calls": len(submitted["requests"]),
                "calls": calls(submitted["requests"]),
                "request_ms": summarize(creates).as_dict(),
                "jobs_per_s": args.jobs / submitted["wall_s"],
            }
            log(f"submitted in {submitted['wall_s']:.2f}s")

            listed = ant(cluster, namespace, "list", "--sweep", sweep_id, "-o", "name")
            if len(listed["stdout"].split()) != args.jobs:
                raise RuntimeError("ant list --sweep did not list every job")
            result["list"] = {
                "wall_s": listed["wall_s"],
                "api_calls": len(listed["requests"]),
                "calls": calls(listed["requests"]),
            }

            log("deleting the sweep with ant delete --sweep")
            deleted = ant(cluster, namespace, "delete", "--sweep", sweep_id, "--yes")
            result["delete"] = {
                "wall_s": deleted["wall_s"],
                "api_calls": len(deleted["requests"]),
                "calls": calls(deleted["requests"]),
            }

            log(f"baseline: {args.baseline} single `ant submit` runs")
            singles = []
            single_calls: dict[str, int] = {}
            for i in range(args.baseline):
                one = ant(cluster, namespace, "submit", str(spec), "--name", f"one-{i}")
                singles.append(one["wall_s"])
                single_calls = calls(one["requests"])
            per_job = summarize(singles)
            result["baseline"] = {
                "runs": args.baseline,
                "wall_s": per_job.as_dict(),
                "calls_per_job": single_calls,
                "api_calls_per_job": sum(single_calls.values()),
                "extrapolated_s": per_job.mean * args.jobs,
            }
    finally:
        if not args.keep:
            log(f"deleting namespace {namespace}")
            result["cleanup_s"] = delete_namespace(cluster, namespace)
    result["load_average_after"] = os.getloadavg()
    result["machine"] = machine_info(cluster)
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(args.results_dir / f"sweep-{args.jobs}.json", result)
    print(report(result), flush=True)
    return 0


def report(result: dict[str, Any]) -> str:
    n = result["jobs"]
    submit, base = result["submit"], result["baseline"]
    rows = [
        [
            f"`ant submit --sweep` ({n} jobs, one process)",
            f"{submit['wall_s']:.2f} s (client CPU {submit['client_cpu_s']:.2f} s)",
            str(submit["api_calls"]),
            f"{submit['jobs_per_s']:.0f} jobs/s",
        ],
        [
            f"`ant list --sweep ID` ({n} jobs)",
            f"{result['list']['wall_s']:.2f} s",
            str(result["list"]["api_calls"]),
            "",
        ],
        [
            f"`ant delete --sweep ID --yes` ({n} jobs)",
            f"{result['delete']['wall_s']:.2f} s",
            str(result["delete"]["api_calls"]),
            f"{n / result['delete']['wall_s']:.0f} jobs/s",
        ],
        [
            f"baseline: one `ant submit` per job (mean of {base['runs']})",
            f"{base['wall_s']['mean']:.2f} s/job -> {base['extrapolated_s']:.0f} s for {n}",
            f"{base['api_calls_per_job']}/job",
            f"{1 / base['wall_s']['mean']:.1f} jobs/s",
        ],
    ]
    table = markdown_table(["What", "Wall time", "API calls", "Rate"], rows)
    lines = [
        table,
        "",
        "Sweep submit calls: " + ", ".join(f"{k} x{v}" for k, v in submit["calls"].items()),
        f"POST latency (ms, as ant saw it): p50 {submit['request_ms']['p50']:.1f}, "
        f"p95 {submit['request_ms']['p95']:.1f}, max {submit['request_ms']['max']:.1f}",
        "Delete calls: " + ", ".join(f"{k} x{v}" for k, v in result["delete"]["calls"].items()),
        "Load average (1 min) before/after: "
        f"{result['load_average_before'][0]:.1f} / {result['load_average_after'][0]:.1f} "
        f"on {result['machine']['cpus']} CPUs",
    ]
    return "\n".join(lines)
