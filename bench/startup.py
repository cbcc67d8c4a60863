"""``python -m bench startup``: how long ``ant`` takes to start, next to ``kubectl``.

Each command runs as a subprocess (the venv's ``ant`` console script, the dev cluster's
kubectl), ``--runs`` times after one warm-up, interleaved across commands. Wall time is
from spawn to exit with stdout/stderr drained. ``ant whoami`` makes one API call to the
dev cluster (a SelfSubjectReview).

*First request*: from spawn to the moment the first HTTP request of ``ant list`` reaches
a server (its request line read, after the TLS handshake). The server is this process: a
loopback HTTPS server with a self-signed certificate that answers every request with 403,
so each run makes exactly one request and exits; no cluster is needed. Then
``python -X importtime`` shows which imports ``ant --help`` and ``ant list`` pay for
(median over a few runs). Without a dev cluster, the rows that need one are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    VENV_BIN,
    Cluster,
    add_cluster_options,
    default_kubeconfig,
    find_cluster,
    fmt_ms,
    machine_info,
    markdown_table,
    summarize,
    write_json,
)

COMMAND_TIMEOUT = 60.0
# As a user runs ant: with bytecode caches written (the warm-up run writes them) and read.
# A shell with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every changed module
# on every run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
# Issue 15's goals, p50 on this machine.
GOAL_HELP_SECONDS = 0.060  # `ant --help`
GOAL_FIRST_REQUEST_SECONDS = 0.080  # `ant list`: process start to first request


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]
    extra: bool = False  # context, not one of the commands the issue asks about


def commands(cluster: Cluster | None) -> list[Command]:
    ant = str(VENV_BIN / "ant")
    out = [
        Command("ant --help", (ant, "--help")),
        Command("ant --version", (ant, "--version")),
        # The floor every Python CLI pays: the venv's interpreter doing nothing.
        Command("python -c pass", (str(VENV_BIN / "python"), "-c", "pass"), extra=True),
    ]
    if cluster is not None:
        kubectl = str(cluster.kubectl)
        kube = ("--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context)
        out[2:2] = [
            Command("ant whoami", (ant, *kube, "whoami")),
            Command("kubectl --help", (kubectl, "--help")),
            Command("kubectl version --client", (kubectl, "version", "--client")),
        ]
    return out


def first_request_commands(kubeconfig: Path, cluster: Cluster | None) -> list[Command]:
    ant = (str(VENV_BIN / "ant"), "--kubeconfig", str(kubeconfig))
    out = [
        # Your own jobs: who you are is asked first (a SelfSubjectReview).
        Command("ant list", (*ant, "list")),
        # Someone else's: the list itself is the first request.
        Command("ant list --user bob", (*ant, "list", "--user", "bob")),
        Command("ant show bert", (*ant, "show", "bert")),
    ]
    if cluster is not None:
        kubectl = (str(cluster.kubectl), "--kubeconfig", str(kubeconfig))
        out.append(Command("kubectl get statefulsets", (*kubectl, "get", "statefulsets")))
    return out


def small_list_commands(cluster: Cluster, user: str) -> list[Command]:
    """One user's jobs in every namespace: ant's everyday list next to kubectl's `get`."""
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context)
    return [
        Command(
            f"ant list -A --user {user}",
            (str(VENV_BIN / "ant"), *kube, "list", "-A", "--user", user),
        ),
        Command(
            f"kubectl get statefulsets -A -l ant.dev/created-by={user} -o json",
            (
                str(cluster.kubectl),
                *kube,
                "get",
                "statefulsets",
                "-A",
                "-l",
                f"ant.dev/created-by={user}",
                "-o",
                "json",
            ),
        ),
    ]


def run_once(command: Command, ok: Sequence[int] = (0,)) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        command.argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False, env=ENV
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        err = proc.stderr.decode(errors="replace").strip()[:300]
        raise RuntimeError(f"{command.label} exited {proc.returncode}: {err}")
    return elapsed


def measure(cmds: Sequence[Command], runs: int, once: Any = run_once) -> dict[str, list[float]]:
    """``runs`` interleaved rounds of ``once(command)`` after one warm-up of each."""
    samples: dict[str, list[float]] = {c.label: [] for c in cmds}
    for command in cmds:
        once(command)  # warm-up: page cache, .pyc files
    for run in range(runs):
        # Rotate the order each round so no command always follows the same one.
        shift = run % len(cmds)
        for command in [*cmds[shift:], *cmds[:shift]]:
            samples[command.label].append(once(command))
    return samples


# --- process start to first request ------------------------------------------------------


class _Forbidden(BaseHTTPRequestHandler):
    """Notes when a request arrives and refuses it: the client exits after one request."""

    arrivals: queue.Queue[float]

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        self.arrivals.put(time.perf_counter())
        if not self.parse_request():
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": 403,
                "reason": "Forbidden",
                "message": "bench: forbidden",
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def forbidding_server() -> Iterator[tuple[Path, queue.Queue[float]]]:
    """A loopback HTTPS server that refuses everything, and a kubeconfig for it."""
    from ant.cache.tls import self_signed

    arrivals: queue.Queue[float] = queue.Queue()
    handler = type("Handler", (_Forbidden,), {"arrivals": arrivals})
    with tempfile.TemporaryDirectory(prefix="ant-bench-startup-") as tmp:
        cert, key = self_signed(Path(tmp), ["127.0.0.1"])
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "bench",
                            "cluster": {
                                "server": f"https://127.0.0.1:{server.server_address[1]}",
                                "certificate-authority": cert,
                            },
                        }
                    ],
                    "users": [{"name": "bench", "user": {"token": "bench"}}],
                    "contexts": [
                        {
                            "name": "bench",
                            "context": {"cluster": "bench", "user": "bench", "namespace": "n"},
                        }
                    ],
                    "current-context": "bench",
                }
            )
        )
        try:
            yield kubeconfig, arrivals
        finally:
            server.shutdown()
            server.server_close()


def first_request_once(command: Command, arrivals: queue.Queue[float]) -> float:
    """Seconds from spawn to the first request's arrival (the command then fails: 403)."""
    while not arrivals.empty():
        arrivals.get_nowait()
    started = time.perf_counter()
    proc = subprocess.run(
        command.argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False, env=ENV
    )
    try:
        return arrivals.get(timeout=5) - started
    except queue.Empty:
        err = proc.stderr.decode(errors="replace").strip()[:300]
        raise RuntimeError(
            f"{command.label} made no request (exit {proc.returncode}): {err}"
        ) from None


# --- python -X importtime ----------------------------------------------------------------


def importtime_once(argv: Sequence[str]) -> dict[str, tuple[int, int, bool]]:
    """module -> (self us, cumulative us, top level?) from one ``python -X importtime`` run."""
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,  # `ant list` against the refusing server exits 4
        env=ENV,
    )
    out: dict[str, tuple[int, int, bool]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        # Nesting shows as indentation after one space; top-level imports have none.
        out[name.strip()] = (int(self_us), int(cumulative_us), not name[1:].startswith(" "))
    return out


def importtime(argv: Sequence[str], runs: int) -> list[dict[str, Any]]:
    """Median self and cumulative import time per module over ``runs`` runs."""
    per_run = [importtime_once(argv) for _ in range(runs)]
    modules = set().union(*per_run)
    rows = []
    for module in modules:
        got = [run[module] for run in per_run if module in run]
        rows.append(
            {
                "module": module,
                "self_ms": statistics.median(s for s, _, _ in got) / 1000,
                "cumulative_ms": statistics.median(c for _, c, _ in got) / 1000,
                "top_level": got[0][2],
            }
        )
    return rows


def top(rows: list[dict[str, Any]], key: str, n: int) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: row[key], reverse=True)[:n]


# --- the command --------------------------------------------------------------------------


def _wall_rows(table: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, res in table.items():
        wall = res["wall_s"]
        rows.append(
            [
                f"`{label}`{' *' if res['extra'] else ''}",
                fmt_ms(wall["p50"]),
                fmt_ms(wall["p95"]),
                f"{wall['spread']:.2f}",
            ]
        )
    return rows


def _goal(what: str, p50: float, goal: float) -> str:
    verdict = "met" if p50 <= goal else "NOT met"
    return f"{what} p50 {fmt_ms(p50)} ms: goal <= {goal * 1000:.0f} ms {verdict}"


def report(result: dict[str, Any]) -> str:
    headers = ["command", "p50 ms", "p95 ms", "p95/p50"]
    out = [
        f"## Startup ({result['runs']} runs after 1 warm-up; load average "
        f"{result['load_average']})",
        "",
        "Wall time, spawn to exit:",
        "",
        markdown_table(headers, _wall_rows(result["commands"])),
        "",
        "Process start to first request (a loopback HTTPS server that answers 403):",
        "",
        markdown_table(headers, _wall_rows(result["first_request"])),
        "",
    ]
    if result["small_list"]:
        out += [
            "A small list on the dev cluster (whole processes, spawn to exit):",
            "",
            markdown_table(headers, _wall_rows(result["small_list"])),
            "",
        ]
    out += [
        _goal("`ant --help`", result["help_p50_s"], GOAL_HELP_SECONDS),
        "",
        _goal(
            "`ant list` start to first request", result["list_p50_s"], GOAL_FIRST_REQUEST_SECONDS
        ),
        "",
    ]
    for command, imports in result["importtime"].items():
        for key, title in (("cumulative_ms", "cumulative"), ("self_ms", "self")):
            top_rows = [
                [f"`{row['module']}`", f"{row['cumulative_ms']:.1f}", f"{row['self_ms']:.1f}"]
                for row in imports[f"top_{key}"]
            ]
            out += [
                f"Top imports of `{command}` by {title} time (median of "
                f"{imports['runs']} runs; all imports: {imports['total_ms']:.0f} ms):",
                "",
                markdown_table(["module", "cumulative ms", "self ms"], top_rows),
                "",
            ]
    return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench startup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command (default: 30)")
    parser.add_argument("--importtime-runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=5, help="imports to show (default: 5)")
    parser.add_argument(
        "--user", default="alice", help="whose jobs the small list lists (default: alice)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    add_cluster_options(parser)
    return parser.parse_args(argv)


def cluster_if_any(args: argparse.Namespace) -> Cluster | None:
    """The cluster named by the options, or the dev cluster if one answers; else None."""
    if args.kubeconfig is None and not default_kubeconfig().is_file():
        return None
    cluster = find_cluster(args)
    probe = subprocess.run(
        [
            str(cluster.kubectl),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--context",
            cluster.context,
            "get",
            "--raw",
            "/readyz",
        ],
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if probe.returncode != 0:
        print(
            f"bench startup: the cluster of {cluster.kubeconfig} does not answer: "
            "the rows that need it are left out",
            file=sys.stderr,
        )
        return None
    return cluster


def _summaries(cmds: Sequence[Command], samples: dict[str, list[float]]) -> dict[str, Any]:
    return {
        c.label: {
            "argv": list(c.argv),
            "extra": c.extra,
            "wall_s": summarize(samples[c.label]).as_dict(),
            "wall_samples_s": samples[c.label],
        }
        for c in cmds
    }


def _imports(argv: Sequence[str], runs: int, n: int) -> dict[str, Any]:
    rows = importtime(argv, runs)
    return {
        "runs": runs,
        "top_cumulative_ms": top(rows, "cumulative_ms", n),
        "top_self_ms": top(rows, "self_ms", n),
        # Everything imported, as the sum of the top-level imports' cumulative times.
        "total_ms": sum(row["cumulative_ms"] for row in rows if row["top_level"]),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = cluster_if_any(args)
    cmds = commands(cluster)
    samples = measure(cmds, args.runs)
    small = small_list_commands(cluster, args.user) if cluster is not None else []
    small_samples = measure(small, args.runs) if small else {}
    ant = str(VENV_BIN / "ant")
    with forbidding_server() as (kubeconfig, arrivals):
        first = first_request_commands(kubeconfig, cluster)
        first_samples = measure(first, args.runs, lambda c: first_request_once(c, arrivals))
        imports = {
            "ant --help": _imports((ant, "--help"), args.importtime_runs, args.top),
            "ant list": _imports(
                (ant, "--kubeconfig", str(kubeconfig), "list"), args.importtime_runs, args.top
            ),
        }
    help_p50 = summarize(samples["ant --help"]).p50
    list_p50 = summarize(first_samples["ant list"]).p50
    result = {
        "runs": args.runs,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "commands": _summaries(cmds, samples),
        "first_request": _summaries(first, first_samples),
        "small_list": _summaries(small, small_samples),
        "help_p50_s": help_p50,
        "help_goal_met": help_p50 <= GOAL_HELP_SECONDS,
        "list_p50_s": list_p50,
        "list_goal_met": list_p50 <= GOAL_FIRST_REQUEST_SECONDS,
        "importtime": imports,
        "machine": machine_info(cluster),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.results_dir / "startup.json", result)
    print(report(result), flush=True)
    return 0
