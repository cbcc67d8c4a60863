"""ant.jobs.waiting: when `ant wait` is done, and with which answer."""

from __future__ import annotations

import pytest

from ant.errors import ExitCode, JobFailed
from ant.jobs.waiting import Condition, JobState, Verdict, settle

RUNNING = JobState("", ready=4, want=4)
STARTING = JobState("", ready=1, want=4)
SUCCEEDED = JobState("Succeeded", ready=0, want=0)
FAILED = JobState("Failed", ready=0, want=0, failure="replica 2 exited with code 3")


def test_running_holds_for_ready_or_succeeded_jobs() -> None:
    assert settle({"a": STARTING}, Condition.RUNNING, any_=False) is None
    assert settle({"a": RUNNING, "b": SUCCEEDED}, Condition.RUNNING, any_=False) == {
        "a": Verdict.HOLDS,
        "b": Verdict.HOLDS,
    }


def test_succeeded_gives_up_at_the_first_failure() -> None:
    with pytest.raises(JobFailed) as e:
        settle({"a": RUNNING, "b": FAILED}, Condition.SUCCEEDED, any_=False)
    assert e.value.exit_code is ExitCode.JOB_FAILED
    assert "job b failed: replica 2 exited with code 3" in str(e.value)


def test_finished_waits_for_every_job_then_reports_a_failure() -> None:
    assert settle({"a": RUNNING, "b": FAILED}, Condition.FINISHED, any_=False) is None
    with pytest.raises(JobFailed):
        settle({"a": SUCCEEDED, "b": FAILED}, Condition.FINISHED, any_=False)
    assert settle({"a": SUCCEEDED}, Condition.FINISHED, any_=False) == {"a": Verdict.HOLDS}


def test_a_deleted_job_can_never_get_there() -> None:
    with pytest.raises(JobFailed, match="job a was deleted"):
        settle({"a": None}, Condition.FINISHED, any_=False)


def test_any_returns_on_the_first_answer() -> None:
    assert settle({"a": STARTING, "b": SUCCEEDED}, Condition.SUCCEEDED, any_=True) == {
        "a": Verdict.WAITING,
        "b": Verdict.HOLDS,
    }
    with pytest.raises(JobFailed):
        settle({"a": STARTING, "b": FAILED}, Condition.SUCCEEDED, any_=True)
    assert settle({"a": STARTING}, Condition.SUCCEEDED, any_=True) is None
