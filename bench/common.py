"""Shared by the benchmarks: finding the dev cluster, deadlines, statistics, tables."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
VENV_BIN = REPO / ".venv" / "bin"


# --- the cluster -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    context: str
    kubectl: Path


def default_kubeconfig() -> Path:
    # Same rule as devcluster/cluster.py, so `make cluster-up` and the bench agree.
    state = os.environ.get("ANT_DEVCLUSTER_STATE") or "~/.cache/ant/devcluster/state"
    return Path(state).expanduser() / "kubeconfig"


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="kubeconfig of the cluster (default: the dev cluster's, from `make cluster-up`)",
    )
    parser.add_argument("--context", default="admin", help="kubeconfig context (default: admin)")
    parser.add_argument(
        "--kubectl",
        type=Path,
        default=None,
        help="kubectl binary (default: the dev cluster's build, from its cluster.json)",
    )


def find_cluster(args: argparse.Namespace) -> Cluster:
    """The cluster named by the options; exits with a hint when there is none."""
    kubeconfig: Path = args.kubeconfig or default_kubeconfig()
    if not kubeconfig.is_file():
        sys.exit(f"bench: no kubeconfig at {kubeconfig}: start the dev cluster (make cluster-up)")
    kubectl: Path | None = args.kubectl
    if kubectl is None:
        # Never /usr/bin/kubectl: the dev cluster records the kubectl it built.
        info = kubeconfig.parent / "cluster.json"
        if info.is_file():
            kubectl = Path(json.loads(info.read_text())["kubectl"])
    if kubectl is None or not kubectl.is_file():
        sys.exit(f"bench: no kubectl found next to {kubeconfig}: pass --kubectl")
    return Cluster(kubeconfig.resolve(), args.context, kubectl)


# --- deadlines -------------------------------------------------------------------------


class Deadline:
    """Every wait in the benchmarks is bounded by one of these."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def check(self, detail: str = "") -> None:
        if self.expired():
            extra = f" ({detail})" if detail else ""
            raise TimeoutError(f"{self.what}: gave up after {self.seconds:.0f}s{extra}")

    def sleep(self, interval: float, detail: str = "") -> None:
        """Sleep up to ``interval``; raise once the deadline has passed."""
        self.check(detail)
        time.sleep(min(interval, self.remaining()))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- statistics ------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    min: float
    max: float
    mean: float

    @property
    def spread(self) -> float:
        """p95/p50: how much the slow runs stray from the typical one."""
        return self.p95 / self.p50 if self.p50 else math.nan

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "spread": self.spread}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); with 10 runs the p95
    is 0.55 of the way from the 9th to the 10th value."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        n=len(values),
        p50=percentile(values, 0.50),
        p95=percentile(values, 0.95),
        min=min(values, default=math.nan),
        max=max(values, default=math.nan),
        mean=sum(values) / len(values) if values else math.nan,
    )


# --- output ----------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_bytes(n: float) -> str:
    """Decimal units (1 MB = 10^6 bytes), as in the project notes."""
    if n >= 1e6:
        return f"{n / 1e6:.2f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- the machine -----------------------------------------------------------------------


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return math.nan


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _kubectl_version(kubectl: Path) -> str:
    try:
        out = subprocess.run(
            [str(kubectl), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return str(json.loads(out)["clientVersion"]["gitVersion"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return "unknown"


def machine_info(cluster: Cluster | None = None) -> dict[str, Any]:
    from google.protobuf.internal import api_implementation

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ant": _package_version("ant"),
        "kubernetes_package": _package_version("kubernetes"),
        "protobuf": _package_version("protobuf"),
        "protobuf_backend": api_implementation.Type(),
        "requests": _package_version("requests"),
        "urllib3": _package_version("urllib3"),
    }
    if cluster is not None:
        info["kubectl"] = _kubectl_version(cluster.kubectl)
    return info
