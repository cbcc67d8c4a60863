"""``python -m bench list``: list every StatefulSet and Pod, five clients side by side.

For each N in ``--sizes`` (ascending, so seeding only ever adds), the cluster is seeded
with N jobs (``bench.seed``), then each variant lists all StatefulSets and all Pods
``--runs`` times after one warm-up. Runs are interleaved (run 1 of every variant, then
run 2, ...; the order rotates each round) so that drifting background load hits all
variants alike.

What one sample is (the same for every variant; see docs/benchmarks.md):

* wall: from the call until the client has produced its result *and* the bench has
  counted the items and read every item's ``metadata.name``: lazy decoding cannot skip
  work. Freeing the result happens after the clock stops. kubectl is timed as a whole
  process (start, list, decode, re-encode to stdout, exit); its output is parsed to
  count the items after the clock stops.
* cpu: ``time.process_time()`` of this process for in-process variants, the child's
  user+sys (``RUSAGE_CHILDREN``) for kubectl.
* bytes: HTTP response body bytes as received, summed over the requests the variant
  made. Every variant asks for ``Accept-Encoding: identity`` (kubectl:
  ``--disable-compression``), so these are the uncompressed bodies; the bench checks
  that no response carried a Content-Encoding.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant.kube import codec
from ant.kube import resources as r
from ant.kube.client import METADATA_LIST_ACCEPT, Client, Resource, connect
from bench import seed
from bench.common import (
    RESULTS_DIR,
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

KUBECTL_PAGE = 500  # kubectl's default --chunk-size: it lists 500 objects per request
KUBECTL_TIMEOUT = 300.0
REQUEST_TIMEOUT = 300.0  # one list of 10,000 pods as JSON models can take a while
GOALS = {"bytes": 0.70, "p50": 0.20}  # (d)/(a), from the issue


@dataclass(frozen=True)
class Kind:
    """One listed resource, as each client spells it."""

    key: str
    resource: Resource[Any]
    official_api: str
    official_method: str


KINDS = (
    Kind("statefulsets", r.STATEFULSETS, "AppsV1Api", "list_stateful_set_for_all_namespaces"),
    Kind("pods", r.PODS, "CoreV1Api", "list_pod_for_all_namespaces"),
)


# --- the clients, and how bytes are counted ----------------------------------------------


@dataclass
class Clients:
    """Every client the variants use, created once (connections stay warm between runs)."""

    cluster: Cluster
    selector: str | None
    ant: Client  # asks for identity encoding, like every variant
    ant_default: Client  # ant exactly as the CLI builds it (requests asks for gzip)
    official: Any  # kubernetes.client.ApiClient
    # (body bytes, Content-Encoding) of each response since the last take_bodies().
    bodies: list[tuple[int, str]] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)

    def take_bodies(self) -> list[tuple[int, str]]:
        taken, self.bodies = self.bodies, []
        return taken

    def close(self) -> None:
        self.ant.transport.close()
        self.ant_default.transport.close()
        self.official.close()


def _record_body(clients: Clients) -> Callable[..., Any]:
    """A requests response hook: note the body size of every (non-streamed) response.

    Hooks run before requests reads the body itself; reading ``content`` here is the
    read it would do next anyway. ``len(content)`` is the size after content decoding,
    so the Content-Encoding is recorded too (identity expected).
    """

    def hook(resp: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("stream"):
            clients.bodies.append((len(resp.content), resp.headers.get("Content-Encoding", "")))
        return resp

    return hook


def open_clients(cluster: Cluster, selector: str | None) -> Clients:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    ant = connect(str(cluster.kubeconfig), cluster.context, timeout=REQUEST_TIMEOUT)
    ant.transport.session.headers["Accept-Encoding"] = "identity"
    ant_default = connect(str(cluster.kubeconfig), cluster.context, timeout=REQUEST_TIMEOUT)
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(
        config_file=str(cluster.kubeconfig),
        context=cluster.context,
        client_configuration=configuration,
    )
    official = k8s.ApiClient(configuration)
    # urllib3 sends no Accept-Encoding of its own; say identity explicitly anyway.
    official.set_default_header("Accept-Encoding", "identity")
    clients = Clients(cluster, selector, ant, ant_default, official)
    ant.transport.session.hooks["response"].append(_record_body(clients))
    ant_default.transport.session.hooks["response"].append(_record_body(clients))
    _count_official_bodies(clients)
    return clients


def _count_official_bodies(clients: Clients) -> None:
    """Wrap the official client's deserializer: it is handed every preloaded body."""
    api = clients.official
    deserialize = api.response_deserialize

    def counting(response_data: Any, *args: Any, **kwargs: Any) -> Any:
        clients.bodies.append(
            (len(response_data.data), response_data.headers.get("Content-Encoding", ""))
        )
        return deserialize(response_data, *args, **kwargs)

    api.response_deserialize = counting


# --- what one variant returns -------------------------------------------------------------


@dataclass
class Fetched:
    items: int  # items whose metadata.name was read
    body_bytes: int
    requests: int
    item_type: str
    content_encodings: tuple[str, ...] = ()
    # Kept alive until the clock has stopped, so freeing the result is not timed.
    result: Any = field(default=None, repr=False)
    # Work that must not be timed (kubectl: parsing its stdout), run after the clock stops.
    finish: Callable[[], Fetched] | None = field(default=None, repr=False)


def read_names(items: Iterable[Any], name: Callable[[Any], str]) -> int:
    """The minimal touch every variant gets: count the items, read every name."""
    count = 0
    for item in items:
        if name(item):
            count += 1
    return count


def _from_bodies(
    clients: Clients, items: Sequence[Any], name: Callable[[Any], str], result: Any
) -> Fetched:
    bodies = clients.take_bodies()
    return Fetched(
        items=read_names(items, name),
        body_bytes=sum(size for size, _ in bodies),
        requests=len(bodies),
        item_type=type(items[0]).__name__ if items else "-",
        content_encodings=tuple(sorted({enc for _, enc in bodies})),
        result=result,
    )


def _attr_name(item: Any) -> str:
    return str(item.metadata.name)


def _dict_name(item: dict[str, Any]) -> str:
    return str(item["metadata"]["name"])


# --- the variants -------------------------------------------------------------------------


def official_models(clients: Clients, kind: Kind) -> Fetched:
    result = _official_call(clients, kind)
    return _from_bodies(clients, result.items, _attr_name, result)


def official_json(clients: Clients, kind: Kind) -> Fetched:
    resp = _official_call(clients, kind, _preload_content=False)
    data = resp.data
    clients.bodies.append((len(data), resp.headers.get("Content-Encoding", "")))
    body = json.loads(data)
    return _from_bodies(clients, body["items"], _dict_name, body)


def _official_call(clients: Clients, kind: Kind, **options: Any) -> Any:
    from kubernetes import client as k8s

    api = getattr(k8s, kind.official_api)(clients.official)
    if clients.selector:
        options["label_selector"] = clients.selector
    return getattr(api, kind.official_method)(_request_timeout=REQUEST_TIMEOUT, **options)


def kubectl_json(clients: Clients, kind: Kind) -> Fetched:
    cluster = clients.cluster
    argv = [
        str(cluster.kubectl),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--context",
        cluster.context,
        "--disable-compression=true",  # identity, like the other variants
        "get",
        kind.key,
        "--all-namespaces",
        "-o",
        "json",
    ]
    if clients.selector:
        argv += ["-l", clients.selector]
    proc = subprocess.run(argv, capture_output=True, timeout=KUBECTL_TIMEOUT, check=True)

    def finish() -> Fetched:
        items = json.loads(proc.stdout)["items"]
        size, requests = kubectl_body_bytes(clients, kind)
        return Fetched(read_names(items, _dict_name), size, requests, "json (stdout)", ("",))

    return Fetched(0, 0, 0, "", finish=finish)


def kubectl_body_bytes(clients: Clients, kind: Kind) -> tuple[int, int]:
    """kubectl's bytes, from replaying its requests (same Accept, same 500-item pages).

    kubectl cannot report them itself; replayed once per listing and cached.
    """
    key = f"kubectl-bytes/{kind.key}"
    if key not in clients.cache:
        total = pages = 0
        token = ""
        for _ in range(100_000 // KUBECTL_PAGE + 1):  # bounded: 100k objects at most
            params = {
                "limit": KUBECTL_PAGE,
                "continue": token or None,
                "labelSelector": clients.selector,
            }
            resp = clients.ant.transport.request(
                "GET", kind.resource.path(), params=params, accept=codec.JSON
            )
            total, pages = total + len(resp.content), pages + 1
            token = resp.json()["metadata"].get("continue", "")
            if not token:
                break
        clients.take_bodies()  # not part of any sample
        clients.cache[key] = (total, pages)
    size, pages = clients.cache[key]
    return size, pages


def ant_list(clients: Clients, kind: Kind) -> Fetched:
    result = clients.ant.list(kind.resource, label_selector=clients.selector)
    return _from_bodies(clients, result.items, _attr_name, result)


def ant_list_metadata(clients: Clients, kind: Kind) -> Fetched:
    result = clients.ant.list_metadata(kind.resource, label_selector=clients.selector)
    return _from_bodies(clients, result.items, _attr_name, result)


def ant_metadata_direct(clients: Clients, kind: Kind) -> Fetched:
    """What list_metadata is meant to send: the PartialObjectMetadataList Accept header."""
    resp = clients.ant.transport.request(
        "GET",
        kind.resource.path(),
        params={"labelSelector": clients.selector},
        accept=METADATA_LIST_ACCEPT,
    )
    result: Any = codec.decode(resp.content)
    return _from_bodies(clients, result.items, _attr_name, result)


def ant_list_gzip(clients: Clients, kind: Kind) -> Fetched:
    """ant as the CLI builds it: requests asks for gzip, which the apiserver honours for
    bodies over 128 KiB. Bytes: the compressed body, measured once outside the clock."""
    result = clients.ant_default.list(kind.resource, label_selector=clients.selector)
    fetched = _from_bodies(clients, result.items, _attr_name, result)

    def finish() -> Fetched:
        fetched.body_bytes, fetched.content_encodings = gzip_body_bytes(clients, kind)
        fetched.finish = None
        return fetched

    fetched.finish = finish
    return fetched


def gzip_body_bytes(clients: Clients, kind: Kind) -> tuple[int, tuple[str, ...]]:
    """The protobuf list's body as the server sends it when asked for gzip (not decoded)."""
    key = f"gzip-bytes/{kind.key}"
    if key not in clients.cache:
        transport = clients.ant_default.transport
        params = {"labelSelector": clients.selector} if clients.selector else {}
        with transport.session.get(
            transport.server + kind.resource.path(),
            params=params,
            headers={
                "Accept": f"{codec.PROTOBUF}, {codec.JSON}",
                "Accept-Encoding": "gzip",
                **transport.auth.headers(),
            },
            cert=transport.auth.client_cert(),
            verify=transport.verify,
            timeout=REQUEST_TIMEOUT,
            stream=True,
        ) as resp:
            resp.raise_for_status()
            raw = resp.raw.read(decode_content=False)
            clients.cache[key] = (len(raw), (resp.headers.get("Content-Encoding", ""),))
    return clients.cache[key]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    fetch: Callable[[Clients, Kind], Fetched]
    in_process: bool = True
    # Not part of the (a)-(e) comparison the issue asks for; shown for context.
    extra: bool = False


VARIANTS = (
    Variant("a", "official client, models", official_models),
    Variant("b", "official client, `_preload_content=False` + `json.loads`", official_json),
    Variant("c", "`kubectl get -A -o json` (subprocess)", kubectl_json, in_process=False),
    Variant("d", "ant `client.list` (protobuf)", ant_list),
    Variant("e", "ant `client.list_metadata`", ant_list_metadata),
    Variant(
        "e2", "metadata Accept sent directly (what (e) should do)", ant_metadata_direct, extra=True
    ),
    Variant("d2", "ant `client.list`, default headers (gzip)", ant_list_gzip, extra=True),
)


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    fetched: list[Fetched] = field(default_factory=list)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample(variant: Variant, clients: Clients, kind: Kind) -> tuple[float, float, Fetched]:
    gc.collect()  # garbage from the previous sample is collected outside the clock
    clients.take_bodies()
    cpu_clock = time.process_time if variant.in_process else _children_cpu
    cpu0, t0 = cpu_clock(), time.perf_counter()
    fetched = variant.fetch(clients, kind)
    wall, cpu = time.perf_counter() - t0, cpu_clock() - cpu0
    if fetched.finish is not None:
        fetched = fetched.finish()
    fetched.result = None
    return wall, cpu, fetched


def rotated(seq: Sequence[Variant], by: int) -> list[Variant]:
    by %= len(seq)
    return [*seq[by:], *seq[:by]]


def measure(
    clients: Clients, kind: Kind, variants: Sequence[Variant], runs: int
) -> tuple[dict[str, Samples], list[float]]:
    """Samples per variant, and the 1-minute load average before and after each round:
    the machine is shared, and contention shows up in the p95s."""
    clients.cache.clear()  # replayed byte counts belong to one N
    samples = {v.key: Samples() for v in variants}
    for variant in variants:
        sample(variant, clients, kind)  # warm-up: connections, imports, server caches
    load = [os.getloadavg()[0]]
    for run in range(runs):
        for variant in rotated(variants, run):
            wall, cpu, fetched = sample(variant, clients, kind)
            got = samples[variant.key]
            got.wall.append(wall)
            got.cpu.append(cpu)
            got.fetched.append(fetched)
        load.append(os.getloadavg()[0])
        print(f"bench: {kind.key}: run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    return samples, load


def variant_result(variant: Variant, got: Samples) -> dict[str, Any]:
    last = got.fetched[-1]
    encodings = sorted({enc for f in got.fetched for enc in f.content_encodings})
    return {
        "label": variant.label,
        "extra": variant.extra,
        "in_process": variant.in_process,
        "items": sorted({f.items for f in got.fetched}),
        "body_bytes": last.body_bytes,
        "body_bytes_all_runs": sorted({f.body_bytes for f in got.fetched}),
        "requests": last.requests,
        "item_type": last.item_type,
        "content_encodings": encodings,
        "wall_s": summarize(got.wall).as_dict(),
        "cpu_s": summarize(got.cpu).as_dict(),
        "wall_samples_s": got.wall,
        "cpu_samples_s": got.cpu,
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    a, d = results.get("a"), results.get("d")
    if not a or not d:
        return {}
    bytes_ratio = d["body_bytes"] / a["body_bytes"]
    p50_ratio = d["wall_s"]["p50"] / a["wall_s"]["p50"]
    return {
        "d_over_a_bytes": bytes_ratio,
        "d_over_a_p50": p50_ratio,
        "spread_a": a["wall_s"]["spread"],
        "spread_d": d["wall_s"]["spread"],
        "goal_bytes_met": bytes_ratio <= GOALS["bytes"],
        "goal_p50_met": p50_ratio <= GOALS["p50"],
        "goal_spread_met": d["wall_s"]["spread"] < a["wall_s"]["spread"],
    }


# --- reporting ----------------------------------------------------------------------------


def kind_table(results: dict[str, dict[str, Any]]) -> str:
    a = results.get("a")
    rows = []
    for key, res in results.items():
        wall, cpu = res["wall_s"], res["cpu_s"]
        vs_bytes = f"{res['body_bytes'] / a['body_bytes']:.2f}x" if a else "-"
        vs_p50 = f"{wall['p50'] / a['wall_s']['p50']:.3f}x" if a else "-"
        cpu_label = fmt_ms(cpu["p50"]) + ("" if res["in_process"] else " (child)")
        rows.append(
            [
                f"({key}){'*' if res['extra'] else ''} {res['label']}",
                "/".join(str(n) for n in res["items"]),
                f"{fmt_bytes(res['body_bytes'])} ({res['requests']} req)",
                vs_bytes,
                fmt_ms(wall["p50"]),
                fmt_ms(wall["p95"]),
                f"{wall['spread']:.2f}",
                vs_p50,
                cpu_label,
                res["item_type"],
            ]
        )
    headers = [
        "variant",
        "items",
        "body bytes",
        "bytes vs (a)",
        "p50 ms",
        "p95 ms",
        "p95/p50",
        "p50 vs (a)",
        "CPU p50 ms",
        "item type",
    ]
    return markdown_table(headers, rows)


def goals_line(ratio: dict[str, Any]) -> str:
    if not ratio:
        return ""

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return (
        f"(d)/(a): bytes {ratio['d_over_a_bytes']:.2f}x (goal <= {GOALS['bytes']:.2f}: "
        f"{mark(ratio['goal_bytes_met'])}), p50 {ratio['d_over_a_p50']:.3f}x "
        f"(goal <= {GOALS['p50']:.2f}: {mark(ratio['goal_p50_met'])}), p95/p50 "
        f"{ratio['spread_d']:.2f} vs {ratio['spread_a']:.2f} "
        f"(goal lower: {mark(ratio['goal_spread_met'])})"
    )


def report(result: dict[str, Any]) -> str:
    out = [
        f"## N = {result['n']:,} ({result['runs']} runs after 1 warm-up, scope: {result['scope']})",
        "",
    ]
    for kind in KINDS:
        res = result["kinds"][kind.key]
        out += [
            f"### {kind.key}",
            "",
            kind_table(res["variants"]),
            "",
            goals_line(res["ratios"]),
            "",
            f"1-minute load average on this {os.cpu_count()}-CPU machine during the runs: "
            f"{min(res.get('load_avg_1m') or [math.nan]):.1f} to "
            f"{max(res.get('load_avg_1m') or [math.nan]):.1f}",
            "",
        ]
    warnings = result.get("warnings") or []
    out += [f"- warning: {w}" for w in warnings]
    return "\n".join(out)


# --- the command --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench list", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes", default="1000,10000", help="comma-separated N (default: %(default)s)"
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs per variant (default: 10)")
    parser.add_argument(
        "--prefix",
        default="bench",
        help="names namespaces <prefix>-0..9 and nodes <prefix>-node-<i>",
    )
    parser.add_argument(
        "--scope",
        choices=("all", "run"),
        default="all",
        help="all: every object in the cluster (no selector); run: cluster-wide with the "
        "label selector ant.dev/bench-run=<prefix> (default: %(default)s)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(v.key for v in VARIANTS),
        help="which variants (default: %(default)s)",
    )
    parser.add_argument(
        "--seed-timeout",
        type=float,
        default=1800.0,
        help="seconds allowed to seed one size, or to clean up (default: %(default)s)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="delete every namespace and node of --prefix, then exit",
    )
    add_cluster_options(parser)
    return parser.parse_args(argv)


@contextmanager
def opened(cluster: Cluster, selector: str | None) -> Iterator[Clients]:
    clients = open_clients(cluster, selector)
    try:
        yield clients
    finally:
        clients.close()


def run_size(
    clients: Clients, args: argparse.Namespace, n: int, variants: Sequence[Variant]
) -> dict[str, Any]:
    seeded = seed.seed(clients.ant, args.prefix, n, args.seed_timeout)
    print(f"bench: seeded N={n}: {seeded}", file=sys.stderr, flush=True)
    kinds: dict[str, Any] = {}
    warnings: list[str] = []
    for kind in KINDS:
        samples, load = measure(clients, kind, variants, args.runs)
        variant_results = {v.key: variant_result(v, samples[v.key]) for v in variants}
        kinds[kind.key] = {
            "variants": variant_results,
            "ratios": ratios(variant_results),
            "load_avg_1m": load,
        }
        warnings += _check(kind, variant_results)
    return {
        "n": n,
        "runs": args.runs,
        "scope": "cluster-wide, all objects"
        if args.scope == "all"
        else f"cluster-wide, label selector {clients.selector}",
        "prefix": args.prefix,
        "seeding": seeded.as_dict(),
        "kinds": kinds,
        "warnings": warnings,
        "machine": machine_info(clients.cluster),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _check(kind: Kind, results: dict[str, dict[str, Any]]) -> list[str]:
    """What makes a comparison suspect: differing counts, compressed bodies, wrong types."""
    out = []
    counts = {n for res in results.values() for n in res["items"]}
    if len(counts) > 1:
        out.append(
            f"{kind.key}: variants saw different item counts {sorted(counts)} "
            "(objects changed during the run?)"
        )
    for key, res in results.items():
        encodings = [e for e in res["content_encodings"] if e not in ("", "identity")]
        if encodings and key != "d2":
            out.append(
                f"{kind.key} ({key}): compressed responses {encodings}: bytes not comparable"
            )
    meta = results.get("e")
    if meta and meta["item_type"] != "PartialObjectMetadata":
        out.append(
            f"{kind.key} (e): client.list_metadata returned {meta['item_type']} items, "
            "not PartialObjectMetadata: it did not ask for metadata only"
        )
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    selector = seed.run_selector(args.prefix) if args.scope == "run" else None
    wanted = set(args.variants.split(","))
    variants = [v for v in VARIANTS if v.key in wanted]
    with opened(cluster, selector) as clients:
        if args.cleanup:
            seed.cleanup(clients.ant, args.prefix, args.seed_timeout)
            return 0
        for n in sorted(int(s) for s in args.sizes.split(",")):
            result = run_size(clients, args, n, variants)
            write_json(args.results_dir / f"list-{n}.json", result)
            print(report(result), flush=True)
    return 0
