"""``ant wait``: until jobs are running, finished or succeeded, by one LIST and one WATCH.

The jobs' StatefulSets say all that is needed: ``ant.dev/phase`` (written by the
controller) for finished and succeeded, ``status.readyReplicas`` for running. The list
may come through the cache; the watch goes to the API server from the list's
resourceVersion (both are the same etcd's), with a label selector naming exactly the
jobs waited for. Nothing is polled.

Conditions (docs/cli.md, "ant wait"):

- ``running``: every replica Ready, or the job already Succeeded (it ran). A Failed job
  can never get there.
- ``succeeded``: ``Succeeded``; a Failed job can never get there.
- ``finished``: ``Succeeded`` or ``Failed``; when all have finished, any Failed one makes
  the answer "failed".

A job deleted while waited for can never get anywhere. With ``any_``, the first job
whose answer is known decides.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ant.errors import Gone, JobFailed, NotFoundError, TransportError, WaitTimeout
from ant.jobs import schema
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.watch import Backoff


class Condition(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    SUCCEEDED = "succeeded"


class Verdict(StrEnum):
    WAITING = "waiting"
    HOLDS = "holds"
    FAILED = "failed"  # the job failed
    GONE = "gone"  # the job was deleted


@dataclass(frozen=True)
class JobState:
    phase: str  # "", Succeeded, Failed
    ready: int
    want: int
    failure: str = ""

    @classmethod
    def of(cls, sts: Any) -> JobState:
        meta = sts.metadata
        return cls(
            phase=meta.labels.get(schema.PHASE, ""),
            ready=sts.status.readyReplicas,
            want=sts.spec.replicas,
            failure=meta.annotations.get(schema.FAILURE, ""),
        )


def verdict(state: JobState | None, condition: Condition) -> Verdict:
    if state is None:
        return Verdict.GONE
    if state.phase == "Failed":
        return Verdict.FAILED
    if state.phase == "Succeeded":
        return Verdict.HOLDS
    if condition is Condition.RUNNING and state.want and state.ready >= state.want:
        return Verdict.HOLDS
    return Verdict.WAITING


def settle(
    states: Mapping[str, JobState | None], condition: Condition, *, any_: bool
) -> dict[str, Verdict] | None:
    """Every job's verdict once the answer is known, else None; raises ``JobFailed``."""
    verdicts = {name: verdict(state, condition) for name, state in states.items()}
    final = {n: v for n, v in verdicts.items() if v is not Verdict.WAITING}
    if any_ and final:
        name, first = next(iter(final.items()))
        if first is not Verdict.HOLDS:
            raise _failed(name, first, states[name])
        return verdicts
    if not any_:
        # succeeded and running give up at the first failure; finished waits for all
        if condition is not Condition.FINISHED or len(final) == len(verdicts):
            for name, v in final.items():
                if v is not Verdict.HOLDS:
                    raise _failed(name, v, states[name])
        if len(final) == len(verdicts):
            return verdicts
    return None


def _failed(name: str, v: Verdict, state: JobState | None) -> JobFailed:
    if v is Verdict.GONE:
        return JobFailed(f"job {name} was deleted")
    why = f": {state.failure}" if state is not None and state.failure else ""
    return JobFailed(f"job {name} failed{why}", hint=f"'ant show {name}' has its exit codes")


def wait(
    reader: Client,
    client: Client,
    namespace: str,
    names: Sequence[str],
    condition: Condition,
    *,
    timeout: float | None = None,
    any_: bool = False,
    on_change: Callable[[Mapping[str, JobState | None]], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Verdict]:
    """Until the condition holds (all jobs, or one with ``any_``); the final verdicts.

    Raises ``NotFoundError`` for a job that does not exist at the start, ``JobFailed``
    (one that failed, or was deleted) and ``WaitTimeout``.
    """
    selector = f"{schema.MANAGED_BY}={schema.MANAGED_BY_VALUE},{schema.JOB} in ({','.join(names)})"
    deadline = None if timeout is None else time.monotonic() + timeout
    stop = stop or threading.Event()
    backoff = Backoff()

    def listed(via: Client) -> tuple[dict[str, JobState | None], str]:
        found = via.list(r.STATEFULSETS, namespace, label_selector=selector)
        by_name = {s.metadata.name: JobState.of(s) for s in found.items}
        return {n: by_name.get(n) for n in names}, found.resource_version

    states, rv = listed(reader)
    missing = [n for n, s in states.items() if s is None]
    if missing:
        raise NotFoundError(
            f"job {missing[0]} not found in namespace {namespace}",
            hint="'ant list' shows your jobs; -n picks the namespace",
        )
    while True:
        if on_change:
            on_change(states)
        done = settle(states, condition, any_=any_)
        if done is not None:
            return done
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {condition.value}")
        if stop.is_set():
            raise WaitTimeout("stopped")
        try:
            rv = _watch_once(client, namespace, selector, rv, states, left)
        except Gone:
            states, rv = listed(client)  # events were lost: start from what is there now
        except TransportError:
            time.sleep(backoff.next_delay())


def _watch_once(
    client: Client,
    namespace: str,
    selector: str,
    rv: str,
    states: dict[str, JobState | None],
    left: float | None,
) -> str:
    """One watch request; returns at the first change (or when it ends)."""
    seconds = 300 if left is None else max(1, min(300, math.ceil(left)))
    for event in client.watch(
        r.STATEFULSETS,
        namespace,
        resource_version=rv,
        label_selector=selector,
        timeout_seconds=seconds,
    ):
        rv = event.resource_version or rv
        if event.type == "BOOKMARK":
            continue
        name = event.object.metadata.name
        if name in states:
            states[name] = None if event.type == "DELETED" else JobState.of(event.object)
            return rv
    return rv
