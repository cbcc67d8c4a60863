"""Placement across clusters (ant.jobs.placement): where the whole gang fits now beside
the waiting jobs that fit, else where the least must free up before it starts, else the
first listed."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ant.jobs.capacity import Capacity
from ant.jobs.placement import Room, demand, place, spread
from ant.jobs.queue import Queue, Waiting

TPU = "google.com/tpu"
NORMAL, HIGH, LOW = 10_000, 100_000, 1_000


def waiting(priority: int, tpus: int = 4) -> Any:
    """A waiting job of ``tpus / 4`` pods of 4 TPUs, none bound yet."""
    return Waiting(
        position=0,
        job=None,  # placement reads no more of a job than this
        priority_value=priority,
        pending=tpus // 4,
        replicas=tpus // 4,
        requests={TPU: Fraction(4), "cpu": Fraction(1)},
        waiting_since=None,
        reason="",
        message="",
    )


def queue(free: int | None, *waiting_priorities: int, pool: int = 32, jobs: Any = ()) -> Room:
    """A cluster of ``pool`` TPUs, ``free`` of them free, with waiting jobs of 4 TPUs at
    ``waiting_priorities`` (or the ``jobs`` given), in queue order."""
    items: Any = tuple(jobs) or tuple(waiting(p) for p in waiting_priorities)
    pool = max(pool, free or 0)
    cap = Capacity(TPU, Fraction(pool), 8, Fraction(0), Fraction(0), cluster_free=None)
    if free is not None:
        held = Fraction(pool - free)
        cap = Capacity(TPU, Fraction(pool), 8, held, Fraction(0), held, Fraction(free))
    return Room.of(Queue(namespace="research", items=items, capacity=(cap,)))


WANT_16 = demand(4, {TPU: "4", "cpu": "8"})


def test_the_gang_goes_where_it_fits_whole_now() -> None:
    chosen = place(["a", "b"], {"a": queue(8), "b": queue(16)}, WANT_16, NORMAL)
    assert chosen.cluster == "b"
    assert chosen.reason == f"the whole gang fits now (16 {TPU} of 16 free)"


def test_the_first_listed_of_those_it_fits_in() -> None:
    assert place(["a", "b"], {"a": queue(32), "b": queue(32)}, WANT_16, NORMAL).cluster == "a"


def test_waiting_jobs_that_fit_take_their_room_first() -> None:
    # a: 16 free, but a job placed a moment ago (16 TPUs, pods not bound yet) takes them.
    rooms = {"a": queue(16, jobs=[waiting(LOW, 16)]), "b": queue(16)}
    chosen = place(["a", "b"], rooms, WANT_16, NORMAL)
    assert chosen.cluster == "b"
    # A waiting job too big for what is free takes nothing: the gang fits beside it.
    rooms = {"a": queue(20, jobs=[waiting(HIGH, 32), waiting(LOW, 4)])}
    chosen = place(["a"], rooms, WANT_16, NORMAL)
    assert chosen.reason == (
        f"the whole gang fits now (16 {TPU} of 20 free, 4 of them wanted by waiting jobs)"
    )


def test_else_where_the_least_must_free_up_first() -> None:
    # a: 16 more (it) + 8 (two jobs ahead, nothing free); b: the HIGH job fits in its 4
    # free TPUs and the LOW ones are not ahead: 16 must free up; c did not answer.
    queues = {"a": queue(0, NORMAL, HIGH), "b": queue(4, HIGH, LOW, LOW), "c": None}
    chosen = place(["a", "b", "c"], queues, WANT_16, NORMAL)
    assert chosen.cluster == "b"
    assert chosen.reason == (
        "it fits in no cluster now that ant can see; here the least must free up before it "
        f"starts (16 {TPU}; 0 waiting job(s) of its priority or higher)"
    )


def test_never_where_its_nodes_could_not_hold_the_whole_gang() -> None:
    # a lacks the least now (8), but its nodes offer 8 TPUs in all: the gang never fits.
    rooms = {"a": queue(8, pool=8), "b": queue(0, NORMAL, NORMAL)}
    assert place(["a", "b"], rooms, WANT_16, NORMAL).cluster == "b"
    chosen = place(["a"], {"a": queue(8, pool=8)}, WANT_16, NORMAL)
    assert (chosen.cluster, chosen.reason) == (
        "a",
        f"it fits in no cluster, not even an empty one (16 {TPU} wanted, at most 8 on any "
        "cluster's Ready nodes); the first listed",
    )


def test_unknown_free_capacity_never_counts_as_fitting_and_is_said() -> None:
    chosen = place(["a", "b"], {"a": queue(None), "b": queue(None, NORMAL)}, WANT_16, NORMAL)
    assert chosen.cluster == "a"
    assert "free capacity unknown in a, b" in chosen.reason


def test_no_answer_at_all_means_the_first_listed() -> None:
    chosen = place(["a", "b"], {"a": None, "b": None}, WANT_16, NORMAL)
    assert (chosen.cluster, chosen.reason) == ("a", "no cluster answered; the first listed")


def test_cpu_only_jobs_fit_anywhere_that_answers() -> None:
    chosen = place(["a", "b"], {"a": None, "b": queue(0)}, demand(2, {"cpu": "1"}), LOW)
    assert (chosen.cluster, chosen.reason) == (
        "b",
        "the whole gang fits now (it asks for no accelerator)",
    )


def test_a_sweep_spreads_taking_the_room_each_job_fills() -> None:
    rooms = {"a": queue(16), "b": queue(40), "c": None}
    placed = spread(["a", "b", "c"], rooms, WANT_16, NORMAL, 5)
    assert [p.cluster for p in placed] == ["a", "b", "b", "b", "a"]
    assert [p.fits for p in placed] == [True, True, True, False, False]
    assert placed[1].reason == f"the whole gang fits now (16 {TPU} of 40 free)"
    assert placed[2].reason == (
        f"the whole gang fits now (16 {TPU} of 40 free, 16 of them wanted by waiting jobs)"
    )
    # Then where the least must free up: b lacks 8 (a 16), then a lacks 16 (b 8 + 16).
    assert f"(8 {TPU}; 0 waiting job(s)" in placed[3].reason
    assert f"(16 {TPU}; 0 waiting job(s)" in placed[4].reason
    assert rooms["b"] == queue(40)  # the caller's view is left as it was


def test_a_spread_sweep_of_jobs_that_fit_nowhere_takes_turns_by_what_waits() -> None:
    placed = spread(["a", "b"], {"a": queue(0, NORMAL), "b": queue(0)}, WANT_16, NORMAL, 4)
    assert [p.cluster for p in placed] == ["b", "a", "b", "a"]
