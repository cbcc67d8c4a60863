"""``python -m bench controller``: 1,000 jobs finishing, and what the controller does about it.

On the dev cluster (whose ``up`` runs the ant controller), in a namespace of its own:

1. One sweep of ``--jobs`` one-replica jobs (busybox, no TPUs, opportunistic) whose pod
   template carries ``ant.dev/test-exit: "0@SECONDS"``: the dev cluster's kwok stage makes
   each container exit 0 that long after it started (docs/development.md). The pool holds
   880 pods (8 nodes x 110), so with 1,000 jobs the last ones start when the first ones
   have finished and been scaled to 0: capacity handed back, as it should be.
2. Two watches (pods and StatefulSets of the namespace) note, on this machine's clock,
   when each job's container is first seen terminated and when its StatefulSet is first
   seen labelled ``ant.dev/phase=Succeeded``: the latency is the difference, both seen
   through the same kind of watch.
3. The controller's CPU time (``/proc/PID/stat``) and peak resident memory (``VmHWM``)
   before and after, and its ``/metrics`` (transitions and writes by kind): API calls per
   transition. Its reads come from its informers; only writes reach the API server.

The controller is shared with whatever else runs on the cluster: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    Cluster,
    Deadline,
    add_cluster_options,
    find_cluster,
    machine_info,
    markdown_table,
    percentile,
    write_json,
)
from bench.sweep import (
    admin_client,
    ant,
    create_namespace,
    delete_namespace,
    ensure_priorities,
    log,
    sweep_flags,
)

SAMPLE = re.compile(r"^(ant_controller_\w+)(?:\{([^}]*)\})? ([0-9.e+-]+)$", re.M)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench controller", description=__doc__)
    add_cluster_options(parser)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs that finish (default 1000)")
    parser.add_argument(
        "--exit-after", type=int, default=20, help="seconds each container runs (default 20)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="give up after (s)")
    return parser.parse_args(argv)


# ---- the controller process -----------------------------------------------------------------


def controller(cluster: Cluster) -> tuple[int, str, str]:
    """The dev cluster's controller: pid, metrics URL, a token allowed to read them."""
    info = json.loads((cluster.kubeconfig.parent / "cluster.json").read_text())
    pid = int(info["components"]["ant-controller"]["pid"])
    url = f"http://127.0.0.1:{info['ports']['ant-controller']}/metrics"
    token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
    return pid, url, token


def process_usage(pid: int) -> dict[str, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        "cpu_s": (int(fields[11]) + int(fields[12])) / ticks,  # utime + stime
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
    }


def metrics(url: str, token: str) -> dict[str, float]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        text = response.read().decode()
    return {
        f"{name}{{{labels or ''}}}": float(value) for name, labels, value in SAMPLE.findall(text)
    }


def delta(after: dict[str, float], before: dict[str, float], prefix: str) -> dict[str, float]:
    return {
        k: after[k] - before.get(k, 0.0)
        for k in after
        if k.startswith(prefix) and after[k] != before.get(k, 0.0)
    }


# ---- what the watches see ---------------------------------------------------------------


class Observer:
    """When each job's container was first seen exited, and its job first seen Succeeded."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.client = admin_client(cluster)
        self.namespace = namespace
        self.exited: dict[str, float] = {}
        self.succeeded: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def start(self) -> None:
        from ant.kube import resources as r

        for resource, seen in ((r.PODS, self._pod), (r.STATEFULSETS, self._statefulset)):
            threading.Thread(target=self._watch, args=(resource, seen), daemon=True).start()

    def _watch(self, resource: Any, seen: Any) -> None:
        from ant.kube.watch import follow

        for event in follow(self.client, resource, "", self.namespace, stop=self.stop):
            if event.type in ("ADDED", "MODIFIED"):
                seen(event.object, time.monotonic())

    def _pod(self, pod: Any, now: float) -> None:
        job = pod.metadata.labels.get("ant.dev/job", "")
        if any(cs.state.terminated.finishedAt.seconds for cs in pod.status.containerStatuses):
            with self.lock:
                self.exited.setdefault(job, now)

    def _statefulset(self, sts: Any, now: float) -> None:
        if sts.metadata.labels.get("ant.dev/phase") == "Succeeded":
            with self.lock:
                self.succeeded.setdefault(sts.metadata.name, now)

    def latencies(self) -> list[float]:
        with self.lock:
            return [self.succeeded[j] - t for j, t in self.exited.items() if j in self.succeeded]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    ensure_priorities(cluster)
    pid, url, token = controller(cluster)
    namespace = f"bench-ctl-{uuid.uuid4().hex[:6]}"
    create_namespace(cluster, namespace)
    log(f"namespace {namespace}; controller pid {pid}")
    observer = Observer(cluster, namespace)
    observer.start()
    result: dict[str, Any] = {
        "jobs": args.jobs,
        "exit_after_s": args.exit_after,
        "load_average_before": os.getloadavg(),
    }
    usage_before, metrics_before = process_usage(pid), metrics(url, token)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "job.yaml"
            spec.write_text(
                json.dumps(
                    {
                        "name": "fin",
                        "image": "busybox:1.36",
                        "priority": "opportunistic",
                        "command": ["train"],
                        "podTemplate": {
                            "metadata": {
                                "annotations": {"ant.dev/test-exit": f"0@{args.exit_after}"}
                            }
                        },
                    }
                )
            )
            log(f"submitting {args.jobs} jobs that exit 0 after {args.exit_after}s")
            submitted = ant(
                cluster,
                namespace,
                "submit",
                str(spec),
                *sweep_flags(args.jobs),
                "-o",
                "name",
                "--deadline",
                f"{int(args.timeout)}s",  # 1,000 creates on a loaded machine take minutes
                verbose=False,
            )
            names = submitted["stdout"].split()
            result["submit_s"] = submitted["wall_s"]
        deadline = Deadline(args.timeout, f"{args.jobs} jobs to succeed")
        while len(observer.succeeded) < len(names):
            deadline.sleep(1.0, f"{len(observer.succeeded)} succeeded")
        result["all_succeeded_after_s"] = time.monotonic() - started
        time.sleep(2)  # the last writes' metrics
        usage_after, metrics_after = process_usage(pid), metrics(url, token)
    finally:
        observer.stop.set()
        result["namespace_delete_s"] = delete_namespace(cluster, namespace)
    latencies = observer.latencies()
    transitions = delta(metrics_after, metrics_before, "ant_controller_transitions_total")
    writes = delta(metrics_after, metrics_before, "ant_controller_writes_total")
    succeeded = sum(v for k, v in transitions.items() if 'kind="succeeded"' in k)
    result.update(
        {
            "latency_s": {
                "n": len(latencies),
                "p50": percentile(latencies, 0.5),
                "p99": percentile(latencies, 0.99),
                "max": max(latencies, default=float("nan")),
            },
            "controller": {
                "cpu_s": usage_after["cpu_s"] - usage_before["cpu_s"],
                "rss_mb": usage_after["rss_mb"],
                "peak_rss_mb": usage_after["peak_rss_mb"],
            },
            "transitions": transitions,
            "writes": writes,
            "writes_per_job": sum(writes.values()) / succeeded if succeeded else None,
            "machine": machine_info(cluster),
        }
    )
    path = RESULTS_DIR / f"controller-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(path, result)
    lat, ctl = result["latency_s"], result["controller"]
    print(
        markdown_table(
            [
                "jobs",
                "exit→Succeeded p50",
                "p99",
                "max",
                "controller CPU",
                "RSS (peak)",
                "writes per job",
                "all done after",
            ],
            [
                [
                    str(args.jobs),
                    f"{lat['p50']:.2f} s",
                    f"{lat['p99']:.2f} s",
                    f"{lat['max']:.2f} s",
                    f"{ctl['cpu_s']:.1f} s",
                    f"{ctl['rss_mb']:.0f} MB ({ctl['peak_rss_mb']:.0f} MB)",
                    f"{result['writes_per_job']:.2f}" if result["writes_per_job"] else "-",
                    f"{result['all_succeeded_after_s']:.0f} s",
                ]
            ],
        )
    )
    print(f"transitions: {transitions}\nwrites: {writes}")
    log(f"results in {path}")
    return 0
