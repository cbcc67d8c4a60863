"""The plan: which pods go in which batch, from what the cluster shows (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ant.errors import (
    ValidationError,
)
from ant.jobs.model import job_from
from ant.jobs.rollout.options import Replicas, RolloutOptions


@dataclass(frozen=True)
class PodState:
    """One replica of the job as the cluster shows it; ``uid`` is empty while it has no pod."""

    index: int
    name: str
    uid: str = ""
    revision: str = ""
    ready: bool = False
    terminating: bool = False
    phase: str = ""
    reason: str = ""
    message: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.uid)

    @property
    def available(self) -> bool:
        return self.exists and self.ready and not self.terminating

    def why(self) -> str:
        """Why the pod is not available, in a few words."""
        if not self.exists:
            return "no pod (the StatefulSet controller has not recreated it yet)"
        if self.terminating:
            return "terminating"
        if self.reason:
            return (
                f"{self.reason}: {' '.join(self.message.split())}" if self.message else self.reason
            )
        if not self.ready:
            return f"{self.phase or 'Pending'}, not Ready"
        return "available"


def owned_pods(sts: Any, pods: Iterable[Any]) -> list[Any]:
    """The pods this StatefulSet controls (a selector can match strangers)."""
    uid = sts.metadata.uid
    return [
        p
        for p in pods
        if any(ref.uid == uid and ref.controller for ref in p.metadata.ownerReferences)
    ]


def observe(sts: Any, pods: Iterable[Any]) -> tuple[PodState, ...]:
    """One ``PodState`` per replica index 0..replicas-1 (pods beyond are being scaled away)."""
    name = sts.metadata.name
    by_index = {rep.index: rep for rep in job_from(sts, owned_pods(sts, pods)).pods}
    states = []
    for i in range(sts.spec.replicas):
        rep = by_index.get(i)
        if rep is None:
            states.append(PodState(i, f"{name}-{i}"))
            continue
        states.append(
            PodState(
                index=i,
                name=rep.pod,
                uid=rep.uid,
                revision=rep.revision,
                ready=rep.ready,
                terminating=rep.terminating,
                phase=rep.phase,
                reason=rep.reason,
                message=rep.message,
            )
        )
    return tuple(states)


@dataclass(frozen=True)
class RolloutPlan:
    """What a rollout would do from the observed state.

    ``batches`` assumes each batch comes back Ready; only the first is certain. When
    ``now`` is False the first batch has to wait for unavailable pods to recover first.
    ``blocked`` says why the rest can never go within the budget (pods outside the rollout
    that are unavailable use all of it).
    """

    job: str
    namespace: str
    replicas: int
    target_revision: str
    selected: tuple[int, ...]
    limit: int
    limit_text: str
    pods: tuple[PodState, ...]
    batches: tuple[tuple[PodState, ...], ...]
    now: bool
    blocked: str = ""
    failed: frozenset[str] = frozenset()  # uids that timed out (--on-failure continue)

    @property
    def selected_pods(self) -> tuple[PodState, ...]:
        chosen = set(self.selected)
        return tuple(p for p in self.pods if p.index in chosen)

    @property
    def to_replace(self) -> tuple[PodState, ...]:
        return tuple(p for batch in self.batches for p in batch)

    @property
    def updated(self) -> int:
        """Selected pods on the target revision and Ready."""
        return sum(
            1 for p in self.selected_pods if p.available and p.revision == self.target_revision
        )

    @property
    def unavailable(self) -> tuple[PodState, ...]:
        return tuple(p for p in self.pods if not p.available)

    @property
    def waiting_for(self) -> tuple[PodState, ...]:
        """Selected pods on their way to the target revision (deleted, starting, or stuck)."""
        return tuple(
            p
            for p in self.selected_pods
            if not p.available and p.uid not in self.failed and not self._old(p)
        )

    @property
    def complete(self) -> bool:
        """Nothing left to replace, and every selected pod is Ready on the target revision."""
        return not self.batches and not self.blocked and not self.waiting_for

    @property
    def next_batch(self) -> tuple[PodState, ...]:
        return self.batches[0] if self.batches and self.now else ()

    def _old(self, p: PodState) -> bool:
        return p.exists and not p.terminating and p.revision != self.target_revision


def plan(
    sts: Any,
    pods: Iterable[Any],
    options: RolloutOptions,
    *,
    failed: frozenset[str] = frozenset(),
) -> RolloutPlan:
    """Batches of pods to delete, from the StatefulSet and its pods as they are now."""
    name, replicas = sts.metadata.name, sts.spec.replicas
    target = sts.status.updateRevision
    if options.replicas is None:
        selected = tuple(range(replicas))
    else:
        # Checked on the ranges before anything is expanded: 0-999999999 costs nothing.
        wanted = Replicas.of(options.replicas)
        outside = wanted.from_index(replicas)
        if outside:
            have = f"0-{replicas - 1}" if replicas else "none"
            raise ValidationError(
                "--replicas", f"{outside} out of range: {name} has replicas {have}"
            )
        selected = tuple(wanted)
    states = observe(sts, pods)
    chosen = set(selected)

    def old(p: PodState) -> bool:
        return p.exists and not p.terminating and p.revision != target

    candidates = [p for p in states if p.index in chosen and old(p)]
    sign = 1 if options.order == "ascending" else -1
    # Pods already unavailable first (replacing them costs no availability), then by order.
    candidates.sort(key=lambda p: (p.available, sign * p.index))
    if options.batch_size is not None:
        limit = options.batch_size
        # The rollout's own pods still coming back (or stuck) take slots of the batch.
        counted = {
            p.index
            for p in states
            if p.index in chosen and not p.available and not old(p) and p.uid not in failed
        }
        persistent: set[int] = set()
    else:
        limit = options.budget.resolve(replicas)
        counted = {p.index for p in states if not p.available}
        # Unavailable pods nothing here will fix: outside the selection on an old revision,
        # or given up on (--on-failure continue). They hold their part of the budget.
        persistent = {
            p.index
            for p in states
            if not p.available and ((p.index not in chosen and old(p)) or p.uid in failed)
        }

    batches: list[tuple[PodState, ...]] = []
    now, blocked = True, ""
    remaining = candidates
    while remaining:
        capacity = limit - len(counted)
        batch: list[PodState] = []
        for p in remaining:
            cost = 0 if p.index in counted else 1
            # A pod already unavailable costs nothing, even when more are down than the
            # budget allows (capacity below 0): replacing it is how they come back.
            if cost > max(capacity, 0):
                break
            capacity -= cost
            batch.append(p)
        if not batch:
            if counted <= persistent:
                stuck = [p for p in states if p.index in persistent]
                blocked = describe_pods(
                    stuck,
                    f"outside the rollout, unavailable, use the whole budget "
                    f"({options.describe_limit(replicas)})",
                )
                break
            if not batches:
                now = False
            counted = set(persistent)  # once what is coming back is back
            continue
        batches.append(tuple(batch))
        remaining = remaining[len(batch) :]
        counted = set(persistent)
    return RolloutPlan(
        job=name,
        namespace=sts.metadata.namespace,
        replicas=replicas,
        target_revision=target,
        selected=selected,
        limit=limit,
        limit_text=options.describe_limit(replicas),
        pods=states,
        batches=tuple(batches),
        now=now,
        blocked=blocked,
        failed=failed,
    )


def describe_pods(pods: Sequence[PodState], what: str, limit: int = 3) -> str:
    """One line: "pods a-1, a-2 not Ready after 5m: Unschedulable: ..." grouped by reason."""
    groups: dict[str, list[str]] = {}
    for p in pods:
        groups.setdefault(p.why(), []).append(p.name)
    parts = []
    for why, names in list(groups.items())[:limit]:
        shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
        parts.append(f"{'pod' if len(names) == 1 else 'pods'} {shown} {what}: {why}")
    if len(groups) > limit:
        parts.append(f"and {sum(len(n) for n in list(groups.values())[limit:])} more pods")
    return "; ".join(parts)
