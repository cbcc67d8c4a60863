"""When a rollout lease is free: expired, or its process on this host has exited."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from ant.jobs.rollout.lease import Holder, Lease

NOW = datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)


def exited_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


def test_a_lease_round_trips_through_its_annotation() -> None:
    lease = Lease(Holder("alice", "laptop", 4242, "ab12cd34"), NOW + timedelta(seconds=90))
    text = lease.encode()
    assert '"expiresAt":"2026-12-01T16:01:30Z"' in text
    assert Lease.decode(text) == lease


def test_a_value_that_is_not_a_lease_holds_nothing() -> None:
    for text in ("", "x", "{}", '{"user": "a", "host": "b", "pid": "x", "token": "t"}'):
        assert Lease.decode(text) is None


def test_a_live_holder_on_another_host_holds_until_expiry() -> None:
    lease = Lease(Holder("bob", "elsewhere.invalid", os.getpid(), "t"), NOW)
    assert not lease.free(NOW - timedelta(seconds=1))
    assert lease.free(NOW)


def test_a_live_process_here_holds_until_expiry() -> None:
    lease = Lease(Holder("alice", socket.gethostname(), os.getpid(), "t"), NOW)
    assert not lease.free(NOW - timedelta(seconds=60))


def test_a_holder_whose_process_exited_here_frees_it_at_once() -> None:
    holder = Holder("alice", socket.gethostname(), exited_pid(), "t")
    assert holder.gone()
    assert Lease(holder, NOW).free(NOW - timedelta(hours=1))


def test_a_pid_on_another_host_is_never_judged_from_here() -> None:
    assert not Holder("alice", "elsewhere.invalid", exited_pid(), "t").gone()
