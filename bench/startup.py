"""``python -m bench startup``: how long ``ant`` takes to start, next to ``kubectl``.

Each command runs as a subprocess (the venv's ``ant`` console script, the dev cluster's
kubectl), ``--runs`` times after one warm-up, interleaved across commands. Wall time is
from spawn to exit with stdout/stderr drained. ``ant whoami`` makes one API call to the
dev cluster (a SelfSubjectReview). Then ``python -X importtime`` shows which imports
``ant --help`` pays for (median over a few runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    VENV_BIN,
    Cluster,
    add_cluster_options,
    find_cluster,
    fmt_ms,
    machine_info,
    markdown_table,
    summarize,
    write_json,
)

COMMAND_TIMEOUT = 60.0
GOAL_HELP_SECONDS = 0.3  # `ant --help` under 0.3 s, from the issue


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]
    extra: bool = False  # context, not one of the commands the issue asks about


def commands(cluster: Cluster) -> list[Command]:
    ant = str(VENV_BIN / "ant")
    kubectl = str(cluster.kubectl)
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context)
    return [
        Command("ant --help", (ant, "--help")),
        Command("ant --version", (ant, "--version")),
        Command("ant whoami", (ant, *kube, "whoami")),
        Command("kubectl --help", (kubectl, "--help")),
        Command("kubectl version --client", (kubectl, "version", "--client")),
        # The floor every Python CLI pays: the venv's interpreter doing nothing.
        Command("python -c pass", (str(VENV_BIN / "python"), "-c", "pass"), extra=True),
    ]


def run_once(command: Command) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command.argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[:300]
        raise RuntimeError(f"{command.label} exited {proc.returncode}: {err}")
    return elapsed


def measure(cmds: Sequence[Command], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {c.label: [] for c in cmds}
    for command in cmds:
        run_once(command)  # warm-up: page cache, .pyc files
    for run in range(runs):
        # Rotate the order each round so no command always follows the same one.
        shift = run % len(cmds)
        for command in [*cmds[shift:], *cmds[:shift]]:
            samples[command.label].append(run_once(command))
    return samples


# --- python -X importtime ----------------------------------------------------------------


def importtime_once(argv: Sequence[str]) -> dict[str, tuple[int, int, bool]]:
    """module -> (self us, cumulative us, top level?) from one ``python -X importtime`` run."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
        env=env,
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


def report(result: dict[str, Any]) -> str:
    rows = []
    for label, res in result["commands"].items():
        wall = res["wall_s"]
        rows.append(
            [
                f"`{label}`{' *' if res['extra'] else ''}",
                fmt_ms(wall["p50"]),
                fmt_ms(wall["p95"]),
                f"{wall['spread']:.2f}",
            ]
        )
    out = [
        f"## Startup ({result['runs']} runs after 1 warm-up)",
        "",
        markdown_table(["command", "p50 ms", "p95 ms", "p95/p50"], rows),
        "",
        f"`ant --help` p50 {fmt_ms(result['help_p50_s'])} ms: goal < "
        f"{GOAL_HELP_SECONDS * 1000:.0f} ms {'met' if result['help_goal_met'] else 'NOT met'}",
        "",
    ]
    for key, title in (("cumulative_ms", "cumulative"), ("self_ms", "self")):
        top_rows = [
            [f"`{row['module']}`", f"{row['cumulative_ms']:.1f}", f"{row['self_ms']:.1f}"]
            for row in result["importtime"][f"top_{key}"]
        ]
        out += [
            f"Top imports of `ant --help` by {title} time (median of "
            f"{result['importtime']['runs']} runs; all imports: "
            f"{result['importtime']['total_ms']:.0f} ms):",
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
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    add_cluster_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cluster = find_cluster(args)
    cmds = commands(cluster)
    samples = measure(cmds, args.runs)
    rows = importtime((str(VENV_BIN / "ant"), "--help"), args.importtime_runs)
    help_p50 = summarize(samples["ant --help"]).p50
    result = {
        "runs": args.runs,
        "commands": {
            c.label: {
                "argv": list(c.argv),
                "extra": c.extra,
                "wall_s": summarize(samples[c.label]).as_dict(),
                "wall_samples_s": samples[c.label],
            }
            for c in cmds
        },
        "help_p50_s": help_p50,
        "help_goal_met": help_p50 < GOAL_HELP_SECONDS,
        "importtime": {
            "runs": args.importtime_runs,
            "top_cumulative_ms": top(rows, "cumulative_ms", args.top),
            "top_self_ms": top(rows, "self_ms", args.top),
            # Everything imported, as the sum of the top-level imports' cumulative times.
            "total_ms": sum(row["cumulative_ms"] for row in rows if row["top_level"]),
        },
        "machine": machine_info(cluster),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.results_dir / "startup.json", result)
    print(report(result), flush=True)
    return 0
