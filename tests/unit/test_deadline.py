"""One deadline per command: a server that answers with headers and then stalls cannot
keep ant waiting 30 s per attempt, five attempts per request (issue 14, item 9)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ant.errors import DeadlineExceeded, ExitCode
from ant.kube.auth import NoAuth
from ant.kube.transport import Deadline, RetryPolicy, Transport
from tests.helpers import run_ant
from tests.unit.scripted_server import ScriptedServer, scripted_server, stall, write_kubeconfig


@pytest.fixture
def stalling() -> Iterator[ScriptedServer]:
    """Every request gets headers and then nothing, until the test ends."""
    release = threading.Event()
    with scripted_server() as server:
        server.replies.extend(stall(release) for _ in range(20))
        yield server
        release.set()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_is_fixed_unless_extended_or_per_call() -> None:
    clock = Clock()
    deadline = Deadline(60, clock=clock)
    clock.now += 50
    assert deadline.call_ends() == 160
    deadline.extend(300)  # a --wait --timeout 5m
    assert deadline.call_ends() == 460
    deadline.per_call()  # logs -f: each call gets the whole budget from when it starts
    clock.now = 1000
    assert deadline.call_ends() == 1060


def test_retries_stop_at_the_deadline(stalling: ScriptedServer) -> None:
    transport = Transport(
        stalling.url,
        auth=NoAuth(),
        timeout=30,
        retry=RetryPolicy(attempts=5, base_delay=0.01),
        deadline=Deadline(1.0, hint="raise it"),
    )
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        transport.request("GET", "/api/v1/namespaces/research/pods")
    assert time.monotonic() - started < 5  # not 5 attempts x 30 s
    assert len(stalling.seen) <= 2
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert "did not answer within the 1s deadline" in str(caught.value)
    assert str(caught.value).endswith("(raise it)")
    # Spent: the next request is refused before anything is sent.
    seen = len(stalling.seen)
    with pytest.raises(DeadlineExceeded):
        transport.request("GET", "/api/v1/namespaces/research/pods")
    assert len(stalling.seen) == seen


@pytest.mark.parametrize(
    ("argv", "vars"),
    [
        (["delete", "--yes", "bert", "--deadline", "2s"], {}),
        (["delete", "--deadline=2s", "--yes", "bert"], {}),
        (["show", "bert"], {"ANT_DEADLINE": "2s"}),
    ],
)
def test_a_stalling_server_ends_the_command_at_its_deadline_with_exit_6(
    argv: list[str], vars: dict[str, str], stalling: ScriptedServer, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", stalling.url)
    started = time.monotonic()
    result = run_ant([*argv, "--kubeconfig", str(kubeconfig)], vars=vars)
    assert time.monotonic() - started < 10, result  # was 153 s
    assert result.code == ExitCode.UNAVAILABLE, result
    assert result.err_lines == [
        f"ant: error: 127.0.0.1:{stalling.url.rsplit(':', 1)[1]} did not answer within the 2s "
        "deadline (read timed out) (--deadline or ANT_DEADLINE sets it)"
    ]


@pytest.mark.parametrize("value", ["0s", "soon", "-1s"])
def test_a_bad_deadline_is_a_usage_error(value: str, tmp_path: Path) -> None:
    result = run_ant(["list", f"--deadline={value}"])
    assert result.code == ExitCode.USAGE, result
    assert len(result.err_lines) == 1
    assert "--deadline" in result.err
