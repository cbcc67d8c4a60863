"""The list benchmark at a tiny size, so bench/ keeps working (docs/benchmarks.md).

Runs ``python -m bench list`` as a subprocess from the repo root (``bench`` is not an
installed package) with its own prefix and ``--scope run``, so it neither sees nor
touches the objects of a full benchmark run or of other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
N = 20
VARIANTS = ("a", "b", "c", "d", "e")

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]


def run_bench(kubeconfig: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "list", "--kubeconfig", str(kubeconfig), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_list_bench_measures_every_variant(devcluster: Any, tmp_path: Path) -> None:
    prefix = f"bsmoke-{uuid.uuid4().hex[:6]}"
    try:
        proc = run_bench(
            devcluster.kubeconfig,
            f"--sizes={N}",
            "--runs=2",
            f"--prefix={prefix}",
            "--scope=run",
            f"--results-dir={tmp_path}",
            "--seed-timeout=30",
            timeout=50,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads((tmp_path / f"list-{N}.json").read_text())
        assert result["seeding"]["pods_running"] == N
        for kind in ("statefulsets", "pods"):
            variants = result["kinds"][kind]["variants"]
            for key in VARIANTS:
                got = variants[key]
                assert got["items"] == [N], (kind, key)
                assert got["body_bytes"] > 0, (kind, key)
                assert len(got["wall_samples_s"]) == 2, (kind, key)
                assert got["wall_s"]["p50"] > 0, (kind, key)
            assert variants["d"]["body_bytes"] < variants["a"]["body_bytes"], kind
        assert "| (d) ant `client.list` (protobuf) |" in proc.stdout
    finally:
        cleanup = run_bench(
            devcluster.kubeconfig,
            f"--prefix={prefix}",
            "--cleanup",
            "--seed-timeout=50",
            timeout=60,
        )
        assert cleanup.returncode == 0, cleanup.stderr[-2000:]
