"""ant.controller.workqueue: client-go's guarantees for job keys."""

from __future__ import annotations

import threading

from ant.controller.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_adds_coalesce_and_come_out_in_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [q.get(timeout=0), q.get(timeout=0), q.get(timeout=0)] == ["a", "b", "c"]
    assert q.get(timeout=0) is None


def test_a_key_is_never_handed_to_two_workers_at_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("job")
    assert q.get(timeout=0) == "job"
    q.add("job")  # changed while being processed
    assert q.get(timeout=0) is None  # not handed out again yet
    q.done("job")
    assert q.get(timeout=0) == "job"  # but not lost either
    q.done("job")
    assert q.get(timeout=0) is None


def test_delayed_keys_come_out_when_due_in_due_order() -> None:
    clock = Clock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("late", 20)
    q.add_after("early", 10)
    assert q.get(timeout=0) is None
    clock.now = 25
    assert [q.get(timeout=0), q.get(timeout=0)] == ["early", "late"]


def test_retries_back_off_per_key_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.05)
    assert [q.retry("k") for _ in range(4)] == [0.01, 0.02, 0.04, 0.05]
    q.forget("k")
    assert q.retry("k") == 0.01


def test_shutdown_wakes_a_waiting_worker() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(q.get()))
    worker.start()
    q.shutdown()
    worker.join(5)
    assert got == [None]
