"""--replicas ranges are checked against the job's size before anything is expanded."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from ant.errors import ExitCode, ValidationError
from ant.jobs.rollout import RolloutOptions, parse_replicas, plan
from ant.jobs.rollout.options import Replicas
from tests.unit.test_rollout_plan import pods, statefulset


@pytest.mark.parametrize("text", ["0-999999", "3,5-3000000"])
def test_a_huge_range_is_refused_without_being_expanded(text: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ValidationError) as err:
            plan(statefulset(12), pods(12), RolloutOptions(replicas=parse_replicas(text)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.exit_code == ExitCode.USAGE
    high = text.rsplit("-", 1)[1]
    assert f"12-{high} out of range: bert has replicas 0-11" in str(err.value)
    assert peak < 1_000_000, f"{peak} bytes: the range was expanded"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("text", ["99999999999", "0-1" + "0" * 5000])
def test_an_index_no_job_can_have_is_a_usage_error(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_replicas(text)
    assert err.value.exit_code == ExitCode.USAGE
    assert "beyond any job's size" in str(err.value)


def test_replicas_are_a_set_kept_as_merged_ranges() -> None:
    chosen = parse_replicas("7,0-2,3,9-10,8")
    assert chosen.ranges == ((0, 3), (7, 10))
    assert str(chosen) == "0-3,7-10"
    assert len(chosen) == 8
    assert 9 in chosen
    assert 5 not in chosen
    assert str(chosen.from_index(8)) == "8-10"
    assert chosen == frozenset({0, 1, 2, 3, 7, 8, 9, 10})
    assert Replicas.of(chosen) is chosen


def test_selected_replicas_within_the_job_are_planned() -> None:
    p = plan(statefulset(12), pods(12), RolloutOptions(replicas=parse_replicas("10-11,0")))
    assert p.selected == (0, 10, 11)
