"""Leader election (ant.controller.lease) against the real API server, with the candidates'
clocks in the test's hands: who may take a Lease, when, and that two never both win.

The failover of whole controllers (processes killed mid-transition) is in
test_controller.py; these pin the rules one round at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ant.controller.lease import LeaderElector, Timing, controller_state
from ant.kube import resources as r
from ant.kube.client import Client, connect
from tests.helpers import wait_for

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = pytest.mark.cluster

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=0.05)


class Clock:
    """A candidate's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def admin(devcluster: DevCluster) -> Iterator[Client]:
    client = connect(str(devcluster.kubeconfig), "admin")
    yield client
    client.transport.close()


def elector(client: Client, namespace: str, who: str, clock: Clock) -> LeaderElector:
    return LeaderElector(client, who, namespace=namespace, name="lead", timing=TIMING, clock=clock)


def holder(client: Client, namespace: str) -> str:
    return str(client.get(r.LEASES, "lead", namespace).spec.holderIdentity)


def test_a_held_lease_is_taken_only_after_it_went_unrenewed_for_its_duration(
    admin: Client, namespace: str
) -> None:
    a_clock, b_clock = Clock(), Clock()
    a, b = elector(admin, namespace, "a", a_clock), elector(admin, namespace, "b", b_clock)
    assert a.try_acquire_or_renew()  # creates it
    assert holder(admin, namespace) == "a"
    assert not b.try_acquire_or_renew()  # b sees it for the first time: held
    b_clock.now += 14
    assert not b.try_acquire_or_renew()  # not yet its duration
    assert a.try_acquire_or_renew()  # a renews: b must see 15 s more without a change
    assert not b.try_acquire_or_renew()
    b_clock.now += 14.9
    assert not b.try_acquire_or_renew()
    b_clock.now += 0.2  # 15.1 s since b last saw a change
    assert b.try_acquire_or_renew()
    lease = admin.get(r.LEASES, "lead", namespace)
    assert (lease.spec.holderIdentity, lease.spec.leaseTransitions) == ("b", 1)
    # a's next renewal finds the Lease moved on and does not win it back.
    assert not a.try_acquire_or_renew()
    assert holder(admin, namespace) == "b"


def test_two_candidates_racing_for_an_expired_lease_never_both_win(
    devcluster: DevCluster, namespace: str, admin: Client
) -> None:
    """Every write carries the resourceVersion read: of candidates that read the same
    expired Lease, exactly one write lands (the others get 409)."""
    first = elector(admin, namespace, "first", Clock())
    assert first.try_acquire_or_renew()
    for round_ in range(5):
        clocks = [Clock() for _ in range(4)]
        clients = [connect(str(devcluster.kubeconfig), "admin") for _ in clocks]
        candidates = [
            elector(c, namespace, f"c{round_}-{i}", clock)
            for i, (c, clock) in enumerate(zip(clients, clocks, strict=True))
        ]
        for candidate, clock in zip(candidates, clocks, strict=True):
            assert not candidate.try_acquire_or_renew()  # held: seen now
            clock.now += TIMING.lease_duration + 1  # and never renewed since, to each
        barrier, won = threading.Barrier(len(candidates)), list[str]()
        threads = [threading.Thread(target=attempt, args=(c, barrier, won)) for c in candidates]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for client in clients:
            client.transport.close()
        assert len(won) == 1, won
        assert holder(admin, namespace) == won[0]


def attempt(candidate: LeaderElector, barrier: threading.Barrier, won: list[str]) -> None:
    barrier.wait()
    if candidate.try_acquire_or_renew():
        won.append(candidate.identity)


def test_a_leader_that_stops_releases_the_lease_for_the_next_at_once(
    admin: Client, namespace: str
) -> None:
    leader = elector(admin, namespace, "leader", Clock())
    stop, events = threading.Event(), []
    runner = threading.Thread(
        target=leader.run,
        args=(stop, lambda: events.append("started"), lambda: events.append("stopped")),
    )
    runner.start()
    wait_for("the leader to lead", leader.leading.is_set, 10)
    assert controller_state(admin, namespace, "lead").running is True
    stop.set()
    runner.join(10)
    assert events == ["started", "stopped"]
    lease = admin.get(r.LEASES, "lead", namespace)
    assert not lease.spec.holderIdentity  # released
    # A stand-by that saw it held a moment ago takes it without waiting out the duration.
    assert elector(admin, namespace, "next", Clock()).try_acquire_or_renew()
    assert holder(admin, namespace) == "next"
