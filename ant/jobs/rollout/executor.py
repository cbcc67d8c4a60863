"""Running a rollout: replace the planned batches, re-observing before each."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

from ant.errors import (
    Conflict,
    JobChanged,
    NotFound,
    RequestTimeout,
    RolloutPaused,
    UsageError,
)
from ant.jobs import schema
from ant.jobs.podwatch import Pods, PodTracker, is_ready
from ant.jobs.rollout.lease import Holder, RolloutLease
from ant.jobs.rollout.options import (
    RolloutOptions,
)
from ant.jobs.rollout.planner import PodState, RolloutPlan, describe_pods, plan
from ant.jobs.rollout.revisions import (
    pod_selector,
    utc_now,
    wait_observed,
)
from ant.kube import resources as r
from ant.kube.client import Client

Phase = Literal["waiting", "deleting", "replacing", "done"]

DELETE_THREADS = 16  # concurrent DELETEs within a batch (the transport pools 32 connections)


@dataclass(frozen=True)
class RolloutProgress:
    """What the executor is doing, for a progress display."""

    phase: Phase
    updated: int  # selected pods Ready on the target revision
    total: int  # selected pods
    batch: int  # current batch number (1-based; 0 before the first)
    batches: int  # batches so far + those planned
    pods: tuple[str, ...]  # the batch's pods, or those waited for


@dataclass(frozen=True)
class RolloutResult:
    job: str
    namespace: str
    target_revision: str
    updated: int
    total: int
    replicas: int
    deleted: tuple[str, ...]
    batches: int
    selected: tuple[int, ...]


ProgressCallback = Callable[[RolloutProgress], None]


def run(
    client: Client,
    sts: Any,
    options: RolloutOptions,
    *,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], str] = utc_now,
    holder: Holder | None = None,
) -> RolloutResult:
    """Replace the selected pods not on ``status.updateRevision``, batch by batch, holding
    the job's rollout lease (``lease.py``) meanwhile.

    Raises ``RolloutPaused`` (and records why on the StatefulSet) when pods do not become
    Ready within ``options.timeout``; nothing further is deleted then. Raises ``RolloutHeld``
    while another rollout of the job holds the lease.
    """
    lease = RolloutLease(client, holder or Holder.here())
    return _Executor(client, sts, options, on_progress or (lambda _: None), clock, lease).run()


class _Executor:
    def __init__(
        self,
        client: Client,
        sts: Any,
        options: RolloutOptions,
        on_progress: ProgressCallback,
        clock: Callable[[], str],
        lease: RolloutLease,
    ) -> None:
        self.client = client
        self.lease = lease
        self.options = options
        self.on_progress = on_progress
        self.clock = clock
        strategy = sts.spec.updateStrategy.type or "RollingUpdate"
        if strategy != "OnDelete":
            raise UsageError(
                f"statefulset {sts.metadata.name} uses updateStrategy {strategy}: "
                "its controller replaces the pods itself",
                hint="ant rolls out OnDelete StatefulSets",
            )
        self.sts = wait_observed(client, sts)
        self.name = self.sts.metadata.name
        self.namespace = self.sts.metadata.namespace
        self.target = self.sts.status.updateRevision
        self.failed: dict[str, PodState] = {}  # uid -> pod given up on (--on-failure continue)
        self.deleted: list[str] = []
        self.checked: set[str] = set()  # uids of pods that came back on another revision
        self.batch = 0
        self.tracker = PodTracker(client, self.namespace, pod_selector(self.sts))

    # ---- the loop ------------------------------------------------------------
    def run(self) -> RolloutResult:
        current = self.plan()  # bad --replicas fail here, before anything is written
        if current.complete:
            self._mark_finished_if_needed()
            self.progress("done", current, ())
            return self.result(current)
        self.lease.take(self.sts, self._start_annotations)
        try:
            return self._roll_out()
        finally:
            self.lease.release()  # nothing left to do when the last PATCH released it

    def _roll_out(self) -> RolloutResult:
        while True:
            current = self.plan()
            if current.complete:
                break
            if current.next_batch:
                self._replace(current.next_batch, current)
            else:
                self._wait_for_recovery(current)
        if self.failed:
            pods = list(self.failed.values())
            reason = "finished, but " + describe_pods(pods, "never became Ready")
            self._stop(reason, current)
        self._mark(
            {
                schema.ROLLOUT_FINISHED_AT: self.clock(),
                schema.ROLLOUT_PAUSED: None,
                **self.lease.release_annotation(),
            },
        )
        self.progress("done", current, ())
        return self.result(current)

    def plan(self) -> RolloutPlan:
        return plan(
            self.sts, self.tracker.pods.values(), self.options, failed=frozenset(self.failed)
        )

    def result(self, current: RolloutPlan) -> RolloutResult:
        return RolloutResult(
            job=self.name,
            namespace=self.namespace,
            target_revision=self.target,
            updated=current.updated,
            total=len(current.selected),
            replicas=current.replicas,
            deleted=tuple(self.deleted),
            batches=self.batch,
            selected=current.selected,
        )

    def progress(self, phase: Phase, current: RolloutPlan, pods: Sequence[str]) -> None:
        # While deleting, the batch is both counted in self.batch and current.batches[0].
        planned = len(current.batches) - (1 if phase == "deleting" else 0)
        self.on_progress(
            RolloutProgress(
                phase=phase,
                updated=current.updated,
                total=len(current.selected),
                batch=self.batch,
                batches=self.batch + max(0, planned),
                pods=tuple(pods),
            )
        )

    def _live_progress(
        self, phase: Phase, pods: Sequence[str], total_batches: int
    ) -> Callable[[Pods], None]:
        """An on_change for the tracker: cheap counting on every watch event."""
        selected = self._selected_names()

        def on_change(current: Pods) -> None:
            updated = sum(
                1
                for name in selected
                if (p := current.get(name)) is not None
                and p.metadata.labels.get(schema.REVISION_HASH) == self.target
                and is_ready(p)
            )
            self.on_progress(
                RolloutProgress(
                    phase, updated, len(selected), self.batch, total_batches, tuple(pods)
                )
            )

        return on_change

    def _selected_names(self) -> list[str]:
        indexes = (
            self.options.replicas
            if self.options.replicas is not None
            else range(self.sts.spec.replicas)
        )
        return [f"{self.name}-{i}" for i in sorted(indexes)]

    # ---- one batch -----------------------------------------------------------
    def _replace(self, batch: tuple[PodState, ...], current: RolloutPlan) -> None:
        self.batch += 1
        names = [p.name for p in batch]
        total_batches = self.batch + len(current.batches) - 1
        self.lease.check()
        self.progress("deleting", current, names)
        if len(batch) == 1:
            self._delete(batch[0])
        else:  # one request each, concurrently: a batch of 50 is not 50 round trips in a row
            with ThreadPoolExecutor(max_workers=min(DELETE_THREADS, len(batch))) as pool:
                list(pool.map(self._delete, batch))
        self.deleted.extend(names)
        old_uids = {p.name: p.uid for p in batch}
        done = self._wait(
            lambda pods: self._batch_back(pods, old_uids),
            self._live_progress("replacing", names, total_batches),
            f"pods {', '.join(names)} to be Ready on {self.target}",
        )
        if done:
            return
        stuck = [
            s
            for s in self.plan().pods
            if s.name in old_uids and not (s.available and s.revision == self.target)
        ]
        self._give_up(stuck, f"not Ready after {_seconds(self.options.timeout)} on {self.target}")

    def _delete(self, pod: PodState) -> None:
        # The uid precondition: a pod already replaced (by anyone) is left alone.
        with suppress(NotFound, Conflict):
            self.client.delete(r.PODS, pod.name, self.namespace, uid=pod.uid)

    def _batch_back(self, pods: Pods, old_uids: Mapping[str, str]) -> bool:
        back = True
        for name, old_uid in old_uids.items():
            pod = pods.get(name)
            if pod is None or pod.metadata.uid == old_uid:
                back = False
                continue
            revision = pod.metadata.labels.get(schema.REVISION_HASH, "")
            if revision != self.target:
                if pod.metadata.uid not in self.checked:
                    self.checked.add(pod.metadata.uid)
                    self._check_target(name, revision)
                back = False
                continue
            if not is_ready(pod):
                back = False
        return back

    def _check_target(self, pod: str, revision: str) -> None:
        """A pod came back on another revision: the template changed under the rollout."""
        latest = self.client.get(r.STATEFULSETS, self.name, self.namespace)
        if (
            latest.status.updateRevision != self.target
            or latest.metadata.uid != self.sts.metadata.uid
        ):
            raise JobChanged(
                f"job {self.name} changed during the rollout: pod {pod} came back on "
                f"{revision}, the update revision is now {latest.status.updateRevision} "
                f"(the rollout was to {self.target})",
            )

    # ---- waiting for the budget --------------------------------------------------
    def _wait_for_recovery(self, current: RolloutPlan) -> None:
        """No batch fits the budget now (or only pods on their way back are left): wait for
        unavailable pods to recover, up to --timeout."""
        names = [p.name for p in current.unavailable]
        self.progress("waiting", current, names)

        def progressed(_: Pods) -> bool:
            latest = self.plan()
            return latest.complete or bool(latest.next_batch)

        total = self.batch + len(current.batches)
        if self._wait(progressed, self._live_progress("waiting", names, total), "the budget"):
            return
        latest = self.plan()
        if latest.blocked:
            self._stop(latest.blocked, latest)
        stuck = [p for p in latest.pods if not p.available and p.uid not in self.failed]
        self._give_up(stuck, f"still unavailable after {_seconds(self.options.timeout)}")

    # ---- failure ---------------------------------------------------------------
    def _give_up(self, stuck: Sequence[PodState], what: str) -> None:
        """--on-failure pause: record why and stop. continue: leave these pods and go on."""
        reason = describe_pods(stuck, what) if stuck else f"no progress {what}"
        if self.options.on_failure == "continue":
            fresh = [p for p in stuck if p.exists and p.uid not in self.failed]
            if fresh:
                self.failed.update((p.uid, p) for p in fresh)
                return
        self._stop(reason, self.plan())

    def _stop(self, reason: str, current: RolloutPlan) -> None:
        self._mark(
            {schema.ROLLOUT_PAUSED: f"{self.clock()} {reason}", **self.lease.release_annotation()}
        )
        raise RolloutPaused(
            f"rollout of {self.name} paused: {reason}",
            hint=f"fix the cause (or 'ant rollback {self.name}'), then run 'ant rollout "
            f"{self.name}' again; nothing more was deleted",
        )

    def _wait(
        self, done: Callable[[Pods], bool], on_change: Callable[[Pods], None], what: str
    ) -> bool:
        """Watch until ``done``; False when --timeout ran out."""
        deadline = time.monotonic() + self.options.timeout
        try:
            self.tracker.wait_until(done, self.options.timeout, on_change=on_change, what=what)
        except RequestTimeout:
            if time.monotonic() < deadline:
                raise  # a request timed out, not the wait
            return False
        return True

    # ---- annotations -------------------------------------------------------------
    def _start_annotations(self, sts: Any) -> dict[str, str | None]:
        """The start mark, written with the lease; a resumed rollout keeps its start time."""
        annotations = sts.metadata.annotations
        resumed = (
            annotations.get(schema.ROLLOUT_TARGET) == self.target
            and schema.ROLLOUT_STARTED_AT in annotations
            and schema.ROLLOUT_FINISHED_AT not in annotations
        )
        return {
            schema.ROLLOUT_TARGET: self.target,
            schema.ROLLOUT_STARTED_AT: annotations[schema.ROLLOUT_STARTED_AT]
            if resumed
            else self.clock(),
            schema.ROLLOUT_FINISHED_AT: None,
            schema.ROLLOUT_PAUSED: None,
        }

    def _mark_finished_if_needed(self) -> None:
        annotations = self.sts.metadata.annotations
        if annotations.get(schema.ROLLOUT_TARGET) == self.target and (
            schema.ROLLOUT_PAUSED in annotations or schema.ROLLOUT_FINISHED_AT not in annotations
        ):
            self._mark({schema.ROLLOUT_FINISHED_AT: self.clock(), schema.ROLLOUT_PAUSED: None})

    def _mark(self, annotations: Mapping[str, str | None]) -> None:
        """A merge patch of ant's own rollout annotations: no resourceVersion needed, it
        touches nothing anyone else writes."""
        self.client.patch(
            r.STATEFULSETS,
            self.name,
            {"metadata": {"annotations": dict(annotations)}},
            self.namespace,
        )


def _seconds(seconds: float) -> str:
    whole = int(seconds)
    if whole >= 60 and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{seconds:g}s"
