"""The planner with more old-revision pods stuck unavailable than the budget allows."""

from __future__ import annotations

from ant.jobs.rollout import Budget, RolloutOptions, plan
from tests.unit.test_rollout_plan import batches, pod, pods, statefulset


def test_stuck_old_pods_beyond_the_budget_are_replaced_first_at_no_cost() -> None:
    current = pods(**{str(i): pod(i, ready=False) for i in (3, 5, 8)})
    p = plan(statefulset(), current, RolloutOptions(max_unavailable=Budget(1)))
    assert p.now
    assert batches(p)[0] == [8, 5, 3]
    assert batches(p)[1:] == [[11], [10], [9], [7], [6], [4], [2], [1], [0]]


def test_stuck_old_pods_leave_room_for_no_healthy_pod_while_over_the_budget() -> None:
    current = pods(**{str(i): pod(i, ready=False) for i in (3, 5, 8)})
    p = plan(statefulset(), current, RolloutOptions(max_unavailable=Budget(2)))
    assert batches(p)[0] == [8, 5, 3]  # 3 down, budget 2: no healthy pod joins them
    assert batches(p)[1] == [11, 10]
