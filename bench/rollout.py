"""``python -m bench rollout``: API calls and wall time of ``ant rollout`` on a big job.

A job of ``--replicas`` pods (default 200; busybox, no TPUs, in a namespace of its own)
is submitted through ``ant.jobs``; for each ``--budgets`` entry its image is changed with
``ant.jobs.rollout.update`` and the new revision rolled out with ``ant.jobs.rollout.run``,
exactly what ``ant update`` and ``ant rollout --max-unavailable B --yes`` call.

What is measured, per rollout:

* wall: from the call of ``run`` until it returns (every pod Ready on the new revision).
* API calls: every HTTP request of ant's client, counted by a ``requests`` adapter mounted
  in front of the transport's own (ant's transport is not modified), by kind: LIST and
  WATCH are GETs with a collection path (``watch=`` in the query for a WATCH).
* cpu: ``time.process_time()`` of this process during ``run``.

kwok makes a pod Running and Ready within about a second of its creation, so the wall
time is ant's overhead plus the control plane's (scheduler, StatefulSet controller)
turnaround, not container start-up.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant.jobs import manifest, priorities
from ant.jobs import rollout as ro
from ant.jobs.identity import Identity
from ant.jobs.podwatch import PodTracker, is_ready
from ant.jobs.spec import JobSpec
from ant.jobs.submission import submit
from ant.kube import resources as r
from ant.kube.client import Client, Resource, connect
from bench.common import (
    RESULTS_DIR,
    add_cluster_options,
    find_cluster,
    fmt_ms,
    machine_info,
    markdown_table,
    write_json,
)

IMAGES = ("busybox:1.36", "busybox:1.37")
SERVICE_ACCOUNTS: Resource[Any] = Resource(
    "", "v1", "serviceaccounts", "ServiceAccount", json_only=True
)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class CallCounter:
    """A requests adapter in front of the transport's adapter: counts, then delegates."""

    inner: Any
    calls: Counter[str] = field(default_factory=Counter)

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls[kind_of(request.method, request.path_url)] += 1
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        self.inner.close()

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def kind_of(method: str, path: str) -> str:
    if method != "GET":
        return method
    path, _, query = path.partition("?")
    if "watch=" in query:
        return "WATCH"
    # /api/v1/namespaces/NS/pods (a collection) vs /api/v1/namespaces/NS/pods/NAME.
    parts = path.strip("/").split("/")
    collection = len(parts) % 2 == (1 if parts[0] == "api" else 0)
    return "LIST" if collection else "GET"


def count_calls(client: Client, server: str) -> CallCounter:
    import requests

    session: requests.Session = client.transport.session
    counter = CallCounter(session.get_adapter(server))
    session.mount(server, counter)  # type: ignore[arg-type]
    return counter


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench rollout", description=__doc__)
    parser.add_argument("--replicas", type=int, default=200, help="pods in the job (%(default)s)")
    parser.add_argument(
        "--budgets",
        default="25%,10%,1",
        help="comma-separated --max-unavailable values, one rollout each (%(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per batch, seconds")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true", help="leave the namespace behind")
    parser.add_argument("--note", default="", help="free text stored with the results")
    add_cluster_options(parser)
    return parser.parse_args(argv)


def create_job(client: Client, namespace: str, name: str, replicas: int) -> Any:
    spec = JobSpec(
        name=name,
        image=IMAGES[0],
        command=("sleep", "infinity"),
        replicas=replicas,
        resources={"cpu": "10m", "memory": "16Mi"},
    )
    provenance = manifest.Provenance(
        identity=Identity(username="bench"), submitted_at=ro.utc_now(), command_line="bench"
    )
    built = manifest.build(spec, name, namespace, provenance)
    return submit(client, built, spec.priority)


def wait_all_ready(client: Client, sts: Any, timeout: float) -> float:
    started = time.perf_counter()
    tracker = PodTracker(client, sts.metadata.namespace, ro.pod_selector(sts))
    want = sts.spec.replicas
    tracker.wait_until(
        lambda pods: sum(1 for p in pods.values() if is_ready(p)) == want,
        timeout,
        what=f"{want} pods Ready",
    )
    return time.perf_counter() - started


def rollout_once(
    client: Client,
    counter: CallCounter,
    namespace: str,
    name: str,
    image: str,
    budget: str,
    timeout: float,
) -> dict[str, Any]:
    change = ro.TemplateChange(image=image)
    counter.take()
    updated = ro.update(client, namespace, name, change, by="bench")
    update_calls = counter.take()
    sts = ro.load(client, namespace, name)
    counter.take()
    options = ro.RolloutOptions(max_unavailable=ro.parse_budget(budget), timeout=timeout)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = ro.run(client, sts, options)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    calls = counter.take()
    replicas = sts.spec.replicas
    return {
        "budget": budget,
        "max_unavailable": options.budget.resolve(replicas),
        "revision": updated.revision,
        "batches": result.batches,
        "deleted": len(result.deleted),
        "updated": result.updated,
        "wall_s": wall,
        "cpu_s": cpu,
        "calls": dict(sorted(calls.items())),
        "calls_total": sum(calls.values()),
        "calls_per_replica": sum(calls.values()) / replicas,
        "update_calls": dict(sorted(update_calls.items())),
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        [
            f"`--max-unavailable {r_['budget']}` ({r_['max_unavailable']})",
            str(r_["batches"]),
            f"{r_['wall_s']:.1f} s",
            f"{fmt_ms(r_['wall_s'] / r_['deleted'])} ms" if r_["deleted"] else "-",
            str(r_["calls_total"]),
            ", ".join(f"{k} {v}" for k, v in r_["calls"].items()),
            f"{r_['cpu_s']:.2f} s",
        ]
        for r_ in result["rollouts"]
    ]
    table = markdown_table(
        ["rollout", "batches", "wall", "wall/pod", "API calls", "by kind", "ant CPU"], rows
    )
    return f"{result['replicas']} replicas, kwok pods (no TPUs):\n\n{table}\n"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    client = connect(str(cluster.kubeconfig), cluster.context, env={})
    namespace = f"bench-rollout-{uuid.uuid4().hex[:6]}"
    name = "rollout"
    try:
        priorities.install(client)
        ns = r.new(r.NAMESPACES)
        ns.metadata.name = namespace
        client.create(r.NAMESPACES, ns)
        # Pods are refused until the namespace's default ServiceAccount exists.
        deadline = time.monotonic() + 60
        while not client.list(SERVICE_ACCOUNTS, namespace).items:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no default ServiceAccount in {namespace}")
            time.sleep(0.2)
        log(f"submitting {name} with {args.replicas} replicas in {namespace}")
        sts = create_job(client, namespace, name, args.replicas)
        ready_s = wait_all_ready(client, sts, args.timeout)
        log(f"{args.replicas} pods Ready after {ready_s:.1f} s")
        counter = count_calls(client, client.transport.server)
        rollouts = []
        for i, budget in enumerate(b.strip() for b in args.budgets.split(",")):
            image = IMAGES[(i + 1) % len(IMAGES)]
            log(f"rollout to {image} with --max-unavailable {budget}")
            one = rollout_once(client, counter, namespace, name, image, budget, args.timeout)
            log(
                f"  {one['batches']} batches, {one['wall_s']:.1f} s, {one['calls_total']} calls "
                f"{one['calls']}"
            )
            rollouts.append(one)
        result = {
            "replicas": args.replicas,
            "submit_to_ready_s": ready_s,
            "rollouts": rollouts,
            "note": args.note,
            "machine": machine_info(cluster),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json(args.results_dir / f"rollout-{args.replicas}.json", result)
        print(report(result), flush=True)
    finally:
        if not args.keep:
            try:
                client.delete(r.NAMESPACES, namespace)
            except Exception as e:  # cleanup is best effort; say so
                log(f"could not delete namespace {namespace}: {e}")
        client.transport.close()
    return 0
