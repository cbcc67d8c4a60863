"""-v logs each API call; -vv adds headers (credentials masked) and timings (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import DevCluster
from tests.helpers import run_ant

CALL = re.compile(r"^ant\.kube\.transport: (GET|POST) https://\S+ (\d{3}) \d+\.\dms$")


def test_v_logs_each_call_and_vv_adds_masked_headers_and_timings(devcluster: DevCluster) -> None:
    args = ["--kubeconfig", str(devcluster.kubeconfig), "--context", "alice", "-n", "research"]
    token = Path(devcluster.info["users"]["alice"]["token_file"]).read_text().strip()

    once = run_ant([*args, "-v", "list", "--all-users"])
    assert once.code == 0, str(once)
    calls = [line for line in once.err_lines if CALL.match(line)]
    assert [CALL.match(c)[1] for c in calls][-1:] == ["GET"], once.err  # type: ignore[index]
    assert all(CALL.match(c)[2] == "200" for c in calls), once.err  # type: ignore[index]
    assert not [line for line in once.err_lines if "timing:" in line or ": <masked>" in line]

    twice = run_ant([*args, "-vv", "list", "--all-users"])
    assert twice.code == 0, str(twice)
    assert any(CALL.match(line) for line in twice.err_lines), twice.err
    assert "ant.kube.transport:   > Authorization: <masked>" in twice.err_lines
    response_headers = [h for h in twice.err_lines if h.startswith("ant.kube.transport:   < ")]
    assert any(h.startswith("ant.kube.transport:   < Content-Type: ") for h in response_headers)
    assert any(
        re.search(r"timing: \d+\.\dms, body (\d+ bytes|streamed), attempt 1$", h)
        for h in twice.err_lines
    )
    assert token not in twice.err
    assert token not in twice.out
