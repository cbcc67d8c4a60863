"""``python -m bench cache``: ant list of one user's jobs through the ant cache vs directly.

The cluster is seeded with ``--jobs`` StatefulSets and their pods (``bench.seed``, run
prefix ``--prefix``; 100 users, so one user owns 1% of the jobs, all in one namespace).
An ``ant cache serve`` process (TLS, on loopback) caches the cluster; then, interleaved
over ``--runs`` runs after a warm-up, each variant fetches the rows ``ant list --user U``
shows:

* job endpoint, protobuf / JSON: ``GET /ant/v1/namespaces/{ns}/jobs?user=U`` (one request);
* compatible path, protobuf / JSON: the two label-selected lists ant makes (StatefulSets
  and pods) from the cache, joined with ``jobs_from``;
* API server direct, protobuf / JSON: the same two lists from the API server.

bytes: response bodies as received (``Accept-Encoding: identity``); wall: from the first
request until the rows (``Job`` objects, or the parsed JSON) exist. Then ``--clients``
load generators (processes with one keep-alive TLS connection each, raw sockets so the
client costs little of the 2 shared cores) ask the job endpoint for 16 users' jobs for
``--seconds`` (at most ``--max-requests``): requests per second and latency. Memory: the
cache process's RSS minus that of a cache holding nothing, per cached object.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ant.cache.client import decode_jobs
from ant.jobs import schema
from ant.jobs.lifecycle import list_jobs
from ant.kube import codec
from ant.kube import resources as r
from ant.kube.auth import StaticAuth
from ant.kube.client import Client, connect
from ant.kube.transport import Transport
from bench import seed, workload
from bench.common import (
    REPO,
    RESULTS_DIR,
    Deadline,
    add_cluster_options,
    find_cluster,
    fmt_bytes,
    fmt_ms,
    machine_info,
    markdown_table,
    process_cpu_seconds,
    summarize,
    write_json,
)

GOALS = {"bytes": 1 / 50, "p50": 1 / 10, "rps": 1000.0}
JSON_ACCEPT = codec.JSON


# --- seeding -----------------------------------------------------------------------------


# --- the cache process -------------------------------------------------------------------


@dataclass
class CacheProcess:
    proc: subprocess.Popen[bytes]
    url: str
    host: str
    port: int
    ca: str
    log: Path

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cache(kubeconfig: Path, context: str, work: Path, *extra: str) -> CacheProcess:
    port = free_port()
    log = work / f"cache-{port}.log"
    argv = [
        sys.executable, "-m", "ant", "--kubeconfig", str(kubeconfig), "--context", context,
        "cache", "serve", "--listen", f"127.0.0.1:{port}",
        "--cert-dir", str(work / f"certs-{port}"),
        *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    return CacheProcess(
        proc,
        f"https://127.0.0.1:{port}",
        "127.0.0.1",
        port,
        str(work / f"certs-{port}" / "ant-cache.crt"),
        log,
    )


def wait_ready(cache: CacheProcess, timeout: float) -> float:
    """Seconds until /readyz answers 200 (the initial lists are in)."""
    import requests

    started = time.monotonic()
    deadline = Deadline(timeout, "the cache's initial sync")
    while True:
        if cache.proc.poll() is not None:
            raise RuntimeError(f"ant cache serve exited: {cache.log.read_text()[-2000:]}")
        try:
            if requests.get(cache.url + "/readyz", verify=cache.ca, timeout=5).status_code == 200:
                return time.monotonic() - started
        except (requests.RequestException, OSError):
            pass
        deadline.sleep(0.2)


# --- the variants ------------------------------------------------------------------------


@dataclass
class Fetch:
    rows: int
    body_bytes: int
    requests: int


def counted(client: Client) -> list[int]:
    """Body sizes of every response ``client`` receives, appended as they come."""
    sizes: list[int] = []
    client.transport.session.headers["Accept-Encoding"] = "identity"

    def hook(resp: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(resp.content))
        return resp

    client.transport.session.hooks["response"].append(hook)
    return sizes


def job_endpoint(client: Client, sizes: list[int], ns: str, user: str, accept: str) -> Fetch:
    sizes.clear()
    resp = client.transport.request(
        "GET", f"/ant/v1/namespaces/{ns}/jobs", params={"user": user}, accept=accept
    )
    rows = decode_jobs(resp.content) if accept != JSON_ACCEPT else resp.json()["items"]
    return Fetch(len(rows), sum(sizes), len(sizes))


def two_lists_protobuf(client: Client, sizes: list[int], ns: str, user: str) -> Fetch:
    sizes.clear()
    jobs = list_jobs(client, ns, user_label=user)
    return Fetch(len(jobs), sum(sizes), len(sizes))


def two_lists_json(client: Client, sizes: list[int], ns: str, user: str) -> Fetch:
    """The same two lists as JSON documents (what a JSON client such as kubectl moves)."""
    sizes.clear()
    selector = schema.mine_selector(user)
    docs = [
        client.transport.request(
            "GET", res.path(ns), params={"labelSelector": selector}, accept=JSON_ACCEPT
        ).json()
        for res in (r.STATEFULSETS, r.PODS)
    ]
    return Fetch(len(docs[0]["items"]), sum(sizes), len(sizes))


Variant = tuple[str, str, Callable[[str, str], Fetch]]


def variants(
    cache: Client, cache_sizes: list[int], api: Client, api_sizes: list[int]
) -> list[Variant]:
    def job(accept: str) -> Callable[[str, str], Fetch]:
        return lambda ns, u: job_endpoint(cache, cache_sizes, ns, u, accept)

    def lists(
        fetch: Callable[[Client, list[int], str, str], Fetch], client: Client, sizes: list[int]
    ) -> Callable[[str, str], Fetch]:
        return lambda ns, u: fetch(client, sizes, ns, u)

    on_cache, on_api = (cache, cache_sizes), (api, api_sizes)
    return [
        ("job-pb", "job endpoint, protobuf", job(codec.PROTOBUF)),
        ("job-json", "job endpoint, JSON", job(JSON_ACCEPT)),
        ("compat-pb", "cache, compatible path, protobuf", lists(two_lists_protobuf, *on_cache)),
        ("compat-json", "cache, compatible path, JSON", lists(two_lists_json, *on_cache)),
        ("api-pb", "API server direct, protobuf", lists(two_lists_protobuf, *on_api)),
        ("api-json", "API server direct, JSON", lists(two_lists_json, *on_api)),
    ]  # fmt: skip


def measure(chosen: list[Variant], ns: str, user: str, runs: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {key: [] for key, _, _ in chosen}
    fetched: dict[str, Fetch] = {}
    for key, _, fetch in chosen:
        fetched[key] = fetch(ns, user)  # warm-up
    for run in range(runs):
        order = chosen[run % len(chosen) :] + chosen[: run % len(chosen)]
        for key, _, fetch in order:
            t0 = time.perf_counter()
            got = fetch(ns, user)
            walls[key].append(time.perf_counter() - t0)
            fetched[key] = got
    return {
        key: {
            "label": label,
            "rows": fetched[key].rows,
            "body_bytes": fetched[key].body_bytes,
            "requests": fetched[key].requests,
            "wall_s": summarize(walls[key]).as_dict(),
            "wall_samples_s": walls[key],
        }
        for key, label, _ in chosen
    }


# --- load --------------------------------------------------------------------------------


def _load_worker(
    host: str, port: int, targets: list[str], token: str, seconds: float, limit: int, out: Any
) -> None:
    """One keep-alive TLS connection asking ``targets`` in turn; (count, latencies)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # loopback, the bench's own server
    sock = context.wrap_socket(socket.create_connection((host, port)), server_hostname=host)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    requests_ = [
        (
            f"GET {t} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: {codec.PROTOBUF}\r\n\r\n"
        ).encode()
        for t in targets
    ]
    latencies: list[float] = []
    errors = 0
    buf = b""
    first = time.monotonic()
    end = first + seconds
    i = 0
    while time.monotonic() < end and i < limit:
        t0 = time.perf_counter()
        sock.sendall(requests_[i % len(requests_)])
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(262144)
            if not chunk:
                raise ConnectionError("the cache closed the connection")
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(buf) < length:
            buf += sock.recv(262144)
        buf = buf[length:]
        if not head.startswith(b"HTTP/1.1 200"):
            errors += 1
        latencies.append(time.perf_counter() - t0)
        i += 1
    sock.close()
    out.put((len(latencies), errors, latencies, first, time.monotonic()))


def load(
    cache: CacheProcess, token: str, targets: list[str], clients: int, seconds: float, limit: int
) -> dict[str, Any]:
    """``clients`` processes, one connection each, for ``seconds`` or ``limit`` requests in all."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    per_client = max(1, limit // clients)
    procs = [
        ctx.Process(
            target=_load_worker,
            args=(cache.host, cache.port, _rotate(targets, i), token, seconds, per_client, out),
        )
        for i in range(clients)
    ]  # fmt: skip
    cpu0 = process_cpu_seconds(cache.proc.pid)
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(10)
    cpu = process_cpu_seconds(cache.proc.pid) - cpu0
    # From the first client's first request to the last client's last answer (connecting
    # and process start-up are not part of it).
    elapsed = max(r[4] for r in results) - min(r[3] for r in results)
    total = sum(r[0] for r in results)
    latencies = [v for r in results for v in r[2]]
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": total,
        "errors": sum(r[1] for r in results),
        "requests_per_second": total / elapsed,
        "latency_s": summarize(latencies).as_dict(),
        "server_cpu_seconds": round(cpu, 2),
    }


def _rotate(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


# --- the command -------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench cache", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--jobs", type=int, default=10_000, help="StatefulSets (default: %(default)s)"
    )
    parser.add_argument("--prefix", default="cbench", help="run prefix (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per variant (default: 20)")
    parser.add_argument("--clients", type=int, default=16, help="load clients (default: 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration (default: 10)")
    parser.add_argument(
        "--max-requests", type=int, default=100_000, help="load bound (default: 100000)"
    )
    parser.add_argument("--seed-timeout", type=float, default=1800.0)
    parser.add_argument("--sync-timeout", type=float, default=300.0)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--cleanup", action="store_true", help="delete the run's objects, then exit"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed, then exit")
    add_cluster_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    admin = connect(str(cluster.kubeconfig), cluster.context, timeout=300)
    if args.cleanup:
        seed.cleanup(admin, args.prefix, args.seed_timeout)
        return 0
    seeded = seed.seed(admin, args.prefix, args.jobs, args.seed_timeout)
    print(f"bench: seeded {seeded}", file=sys.stderr, flush=True)
    if args.seed_only:
        return 0
    user_index = 0
    user = workload.USERS[user_index]
    ns = workload.namespace_of(args.prefix, user_index)
    token = _token(admin)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        work = Path(tmp)
        empty = start_cache(
            cluster.kubeconfig,
            cluster.context,
            work,
            "--namespaces",
            f"{args.prefix}-empty",
            "--resources",
            "statefulsets,pods",
        )
        full = start_cache(cluster.kubeconfig, cluster.context, work)
        try:
            wait_ready(empty, args.sync_timeout)
            sync_s = wait_ready(full, args.sync_timeout)
            time.sleep(2)
            objects, stored = _cache_objects(full, token)
            memory = {
                "rss_bytes": full.rss_bytes(),
                "empty_rss_bytes": empty.rss_bytes(),
                "objects": objects,
                "stored_bytes": stored,
            }
            memory["bytes_per_object"] = (memory["rss_bytes"] - memory["empty_rss_bytes"]) / max(
                1, objects
            )
            memory["stored_bytes_per_object"] = stored / max(1, objects)
            cache_client = Client(
                Transport(full.url, auth=StaticAuth(token=token), verify=full.ca, timeout=300)
            )
            cache_sizes = counted(cache_client)
            api_sizes = counted(admin)
            chosen = variants(cache_client, cache_sizes, admin, api_sizes)
            print(
                f"bench: measuring {len(chosen)} variants x {args.runs} runs",
                file=sys.stderr,
                flush=True,
            )
            results = measure(chosen, ns, user, args.runs)
            targets = [
                f"/ant/v1/namespaces/{workload.namespace_of(args.prefix, i)}/jobs"
                f"?user={workload.USERS[i]}"
                for i in range(16)
            ]
            print(
                f"bench: load: {args.clients} clients, {args.seconds}s", file=sys.stderr, flush=True
            )
            throughput = load(full, token, targets, args.clients, args.seconds, args.max_requests)
        finally:
            full.stop()
            empty.stop()
    report_data = {
        "jobs": args.jobs,
        "user": user,
        "namespace": ns,
        "runs": args.runs,
        "seeding": seeded.as_dict(),
        "sync_seconds": round(sync_s, 2),
        "variants": results,
        "ratios": ratios(results),
        "load": throughput,
        "memory": memory,
        "machine": machine_info(cluster),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.results_dir / f"cache-{args.jobs}.json", report_data)
    print(report(report_data), flush=True)
    return 0


def _token(client: Client) -> str:
    headers = client.transport.auth.headers()
    return headers.get("Authorization", "").removeprefix("Bearer ")


def _cache_objects(cache: CacheProcess, token: str) -> tuple[int, int]:
    import requests

    text = requests.get(
        cache.url + "/metrics",
        headers={"Authorization": f"Bearer {token}"},
        verify=cache.ca,
        timeout=30,
    ).text
    objects = sum(float(v) for v in re.findall(r"^ant_cache_objects\{[^}]*\} (\S+)$", text, re.M))
    stored = sum(
        float(v) for v in re.findall(r"^ant_cache_stored_bytes\{[^}]*\} (\S+)$", text, re.M)
    )
    return int(objects), int(stored)


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    job, api_json = results["job-pb"], results["api-json"]
    bytes_ratio = job["body_bytes"] / api_json["body_bytes"]
    p50_ratio = job["wall_s"]["p50"] / api_json["wall_s"]["p50"]
    return {
        "job_over_api_json_bytes": bytes_ratio,
        "job_over_api_json_p50": p50_ratio,
        "goal_bytes_met": bytes_ratio <= GOALS["bytes"],
        "goal_p50_met": p50_ratio <= GOALS["p50"],
    }


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(data: dict[str, Any]) -> str:
    base = data["variants"]["api-json"]
    rows = []
    for key, v in data["variants"].items():
        wall = v["wall_s"]
        rows.append(
            [
                f"`{key}` {v['label']}",
                str(v["rows"]),
                f"{fmt_bytes(v['body_bytes'])} ({v['requests']} req)",
                f"1/{base['body_bytes'] / v['body_bytes']:.0f}" if v["body_bytes"] else "-",
                fmt_ms(wall["p50"]),
                fmt_ms(wall["p95"]),
                f"1/{base['wall_s']['p50'] / wall['p50']:.1f}",
            ]
        )
    table = markdown_table(
        [
            "variant",
            "rows",
            "body bytes",
            "bytes vs api-json",
            "p50 ms",
            "p95 ms",
            "p50 vs api-json",
        ],
        rows,
    )
    ratio, load_, mem = data["ratios"], data["load"], data["memory"]
    lines = [
        f"## Cache: ant list of one user's jobs ({data['variants']['job-pb']['rows']} of "
        f"{data['jobs']:,} StatefulSets; {data['runs']} runs after a warm-up)",
        "",
        table,
        "",
        f"- job endpoint vs API server JSON: bytes {ratio['job_over_api_json_bytes']:.4f}x "
        f"(goal <= {GOALS['bytes']:.3f}: {'met' if ratio['goal_bytes_met'] else 'NOT met'}), "
        f"p50 {ratio['job_over_api_json_p50']:.3f}x (goal <= {GOALS['p50']:.2f}: "
        f"{'met' if ratio['goal_p50_met'] else 'NOT met'})",
        f"- load: {load_['clients']} clients on loopback, {load_['requests']:,} requests in "
        f"{load_['seconds']} s: **{load_['requests_per_second']:,.0f} requests/s** "
        f"(goal >= {GOALS['rps']:,.0f}: {_met(load_['requests_per_second'] >= GOALS['rps'])}), "
        f"p50 {fmt_ms(load_['latency_s']['p50'])} ms, p95 {fmt_ms(load_['latency_s']['p95'])} ms, "
        f"{load_['errors']} errors; cache CPU {load_['server_cpu_seconds']} s",
        f"- memory: {mem['objects']:,} objects; RSS {mem['rss_bytes'] / 2**20:.0f} MiB vs "
        f"{mem['empty_rss_bytes'] / 2**20:.0f} MiB empty: "
        f"**{mem['bytes_per_object'] / 1024:.1f} KiB per object** "
        f"({mem['stored_bytes_per_object'] / 1024:.1f} KiB of it stripped protobuf)",
        f"- initial sync of the cache: {data['sync_seconds']} s",
    ]
    return "\n".join(lines)
