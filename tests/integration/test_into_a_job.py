"""Into a running job through the API server: `ant exec JOB -r N -- CMD` (pods/exec over
WebSocket) and `ant port-forward JOB -r N LOCAL:REMOTE` (pods/portforward over WebSocket).

kwok serves exec by running the command on the dev cluster's host, and port-forward by
running `cat` per connection: the pod's port echoes (devcluster/config/kwok-exec.yaml). So
output, stderr, exit codes and forwarded bytes are real. That config is read when kwok
starts: the happy paths run on a private cluster started here (the shared one may predate
it); refusals need no kwok config and run on the shared cluster."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from ant.errors import ExitCode
from tests.helpers import Result, run_ant

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]


def free_port_base(span: int = 16) -> int:
    """A block of loopback ports below the ephemeral range that nothing listens on."""
    for base in range(28443, 32768 - span, 200):
        try:
            for port in range(base, base + span):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    pytest.fail("no free block of ports for a private dev cluster")


@pytest.fixture(scope="module")
def private_kubeconfig(
    tmp_path_factory: pytest.TempPathFactory,
    cluster_script: Callable[..., subprocess.CompletedProcess[str]],
) -> Iterator[str]:
    """A private dev cluster with a running job `ex` (2 replicas) in `research`."""
    private = {
        "ANT_DEVCLUSTER_STATE": str(tmp_path_factory.mktemp("cluster") / "state"),
        "ANT_DEVCLUSTER_PORT_BASE": str(free_port_base()),
    }
    up = cluster_script("up", env=private)
    try:
        assert up.returncode == 0, up.stderr
        kubeconfig = up.stdout.strip()
        assert ant(kubeconfig, "admin", "admin", "install-priorities").code == 0
        submitted = ant(
            kubeconfig, "admin", "-n", "research", "submit", "--name", "ex",
            "--image", "busybox:1.36", "--replicas", "2", "--", "sleep", "1000",
        )  # fmt: skip
        assert submitted.code == 0, str(submitted)
        running = ant(kubeconfig, "admin", "-n", "research", "wait", "ex", "--for", "running")
        assert running.code == 0, str(running)
        yield kubeconfig
    finally:
        cluster_script("down", env=private, timeout=120)


def ant(kubeconfig: str, user: str, *argv: str) -> Result:
    return run_ant(["--kubeconfig", kubeconfig, "--context", user, *argv])


def test_exec_runs_in_the_replica_and_returns_its_output_and_exit_code(
    private_kubeconfig: str,
) -> None:
    done = ant(
        private_kubeconfig, "admin", "-n", "research", "exec", "ex", "-r", "1", "--",
        "sh", "-c", "echo out; echo err >&2; exit 3",
    )  # fmt: skip
    assert (done.code, done.out, done.err) == (3, "out\n", "err\n"), str(done)
    ok = ant(private_kubeconfig, "admin", "-n", "research", "exec", "ex", "--", "echo", "a b")
    assert (ok.code, ok.out, ok.err) == (0, "a b\n", ""), str(ok)


def test_exec_where_the_cluster_refuses(devcluster: DevCluster, namespace: str) -> None:
    kc = str(devcluster.kubeconfig)
    submitted = ant(kc, "alice", "-n", namespace, "submit", "--name", "ex", "--image", "busybox")
    assert submitted.code == 0, str(submitted)
    assert ant(kc, "alice", "-n", namespace, "wait", "ex", "--for", "running").code == 0
    # Researchers in the dev cluster may not exec (no pods/exec in their role): 403, exit 4.
    refused = ant(kc, "alice", "-n", namespace, "exec", "ex", "--", "true")
    assert refused.code == ExitCode.UNAUTHORIZED, str(refused)
    assert refused.err_lines == [
        f'ant: error: pods "ex-0" is forbidden: User "alice" cannot get resource "pods/exec" '
        f'in API group "" in the namespace "{namespace}"'
    ]
    missing = ant(kc, "alice", "-n", namespace, "exec", "nope", "--", "true")
    assert missing.code == ExitCode.NOT_FOUND, str(missing)
    out_of_range = ant(kc, "alice", "-n", namespace, "exec", "ex", "-r", "3", "--", "true")
    assert out_of_range.code == ExitCode.USAGE, str(out_of_range)
    assert "--replica: 3 is out of range: ex has 0-0" in out_of_range.err
    no_command = ant(kc, "alice", "-n", namespace, "exec", "ex")
    assert no_command.code == ExitCode.USAGE, str(no_command)
    assert "no command to run (ant exec ex -- CMD [ARGS...])" in no_command.err


def test_port_forward_relays_a_local_port_to_the_replica(private_kubeconfig: str) -> None:
    argv = [sys.executable, "-m", "ant", "--kubeconfig", private_kubeconfig, "--context"]
    argv += ["admin", "-n", "research", "port-forward", "ex", "-r", "1", "0:8080"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    ) as forwarder:  # fmt: skip
        try:
            assert forwarder.stdout is not None
            ready = forwarder.stdout.readline()  # blocks until it listens (or exits)
            found = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n", ready)
            assert found, ready
            for message in (b"hello\n", b"second connection\n"):  # a stream per connection
                with socket.create_connection(("127.0.0.1", int(found.group(1))), 10) as conn:
                    conn.sendall(message)
                    echoed = b""
                    while len(echoed) < len(message):
                        chunk = conn.recv(100)
                        assert chunk, f"closed after {echoed!r}"
                        echoed += chunk
                    assert echoed == message
        finally:
            forwarder.terminate()
            forwarder.wait(10)


def test_port_forward_where_the_cluster_refuses(devcluster: DevCluster, namespace: str) -> None:
    kc = str(devcluster.kubeconfig)
    submitted = ant(kc, "alice", "-n", namespace, "submit", "--name", "pf", "--image", "busybox")
    assert submitted.code == 0, str(submitted)
    assert ant(kc, "alice", "-n", namespace, "wait", "pf", "--for", "running").code == 0
    # Researchers in the dev cluster may not port-forward (no pods/portforward): 403.
    refused = ant(kc, "alice", "-n", namespace, "port-forward", "pf", "0:8080")
    assert refused.code == ExitCode.UNAUTHORIZED, str(refused)
    assert refused.out == ""  # refused before it listened
    bad = ant(kc, "alice", "-n", namespace, "port-forward", "pf", "8080:x")
    assert bad.code == ExitCode.USAGE, str(bad)
    assert "PORTS: '8080:x' is not LOCAL:REMOTE" in bad.err
