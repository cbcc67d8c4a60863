"""Placement across clusters (ant.jobs.placement): where the whole gang fits now, else the
shortest queue ahead of it, else the first listed."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace
from typing import Any

from ant.jobs.capacity import Capacity
from ant.jobs.placement import Room, demand, place, spread
from ant.jobs.queue import Queue

TPU = "google.com/tpu"
NORMAL, HIGH, LOW = 10_000, 100_000, 1_000


def queue(free: int | None, *waiting_priorities: int) -> Room:
    items: Any = tuple(SimpleNamespace(priority_value=p) for p in waiting_priorities)
    cap = Capacity(TPU, Fraction(32), 8, Fraction(0), Fraction(0), cluster_free=None)
    if free is not None:
        cap = Capacity(
            TPU,
            Fraction(32),
            8,
            Fraction(32 - free),
            Fraction(0),
            Fraction(32 - free),
            Fraction(free),
        )
    return Room.of(Queue(namespace="research", items=items, capacity=(cap,)))


WANT_16 = demand(4, {TPU: "4", "cpu": "8"})


def test_the_gang_goes_where_it_fits_whole_now() -> None:
    chosen = place(["a", "b"], {"a": queue(8), "b": queue(16)}, WANT_16, NORMAL)
    assert chosen.cluster == "b"
    assert chosen.reason == f"the whole gang fits now (16 {TPU} of 16 free)"


def test_the_first_listed_of_those_it_fits_in() -> None:
    assert place(["a", "b"], {"a": queue(32), "b": queue(32)}, WANT_16, NORMAL).cluster == "a"


def test_else_where_fewest_jobs_of_its_priority_or_higher_wait() -> None:
    queues = {"a": queue(0, NORMAL, HIGH), "b": queue(4, HIGH, LOW, LOW), "c": None}
    chosen = place(["a", "b", "c"], queues, WANT_16, NORMAL)
    assert chosen.cluster == "b"
    assert "1 waiting job(s) of its priority or higher here, the fewest" in chosen.reason


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
    assert [p.cluster for p in placed] == ["a", "b", "b", "a", "b"]
    assert [p.fits for p in placed] == [True, True, True, False, False]
    assert placed[1].reason == f"the whole gang fits now (16 {TPU} of 40 free)"
    assert placed[2].reason == f"the whole gang fits now (16 {TPU} of 24 free)"
    # Then by queue: a has none waiting (ties go to the first listed), then b does.
    assert "0 waiting job(s) of its priority or higher here" in placed[3].reason
    assert "0 waiting job(s) of its priority or higher here" in placed[4].reason
    assert rooms["b"] == queue(40)  # the caller's view is left as it was


def test_a_spread_sweep_of_jobs_that_fit_nowhere_takes_turns_by_queue_length() -> None:
    placed = spread(["a", "b"], {"a": queue(0, NORMAL), "b": queue(0)}, WANT_16, NORMAL, 4)
    assert [p.cluster for p in placed] == ["b", "a", "b", "a"]
