"""``ant rollout status``: revisions, the pods on each, and the rollout annotations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from ant.jobs import schema
from ant.jobs.rollout.planner import PodState, observe
from ant.jobs.rollout.revisions import (
    Revision,
    list_revisions,
    load,
    pod_selector,
)
from ant.kube import resources as r
from ant.kube.client import Client

RolloutState = Literal["Complete", "Progressing", "Paused", "Pending"]
_PAUSED = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) (.*)$", re.DOTALL)


@dataclass(frozen=True)
class RevisionPods:
    """One revision of the job, and the pods that run it."""

    name: str
    number: int | None  # None when its ControllerRevision is gone
    indexes: tuple[int, ...]
    ready: int
    update: bool


@dataclass(frozen=True)
class RolloutStatus:
    name: str
    namespace: str
    replicas: int
    update_revision: str
    # The controller's status.currentRevision. Under OnDelete it is never advanced (only
    # RollingUpdate completes it), so ant counts pods per revision instead.
    current_revision: str
    updated: int  # pods Ready on the update revision
    state: RolloutState
    message: str
    revisions: tuple[RevisionPods, ...]  # newest first
    unavailable: tuple[PodState, ...]
    target_revision: str = ""
    started_at: str = ""
    finished_at: str = ""
    paused_at: str = ""
    paused: str = ""  # why, while paused
    last_update: Mapping[str, Any] | None = None


def status(client: Client, namespace: str, target: str) -> RolloutStatus:
    """Revisions and their pods, unavailable pods, and the rollout annotations: 3 reads."""
    sts = load(client, namespace, target)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pods = pool.submit(client.list, r.PODS, namespace, label_selector=pod_selector(sts))
        revisions = pool.submit(list_revisions, client, sts)
        return rollout_status(sts, pods.result().items, revisions.result())


def rollout_status(sts: Any, pods: Iterable[Any], revisions: Sequence[Revision]) -> RolloutStatus:
    """Pure: the status from what was read."""
    name, replicas = sts.metadata.name, sts.spec.replicas
    update_rev = sts.status.updateRevision
    states = observe(sts, pods)
    # Every revision the StatefulSet has (rollback targets), and any a pod still runs.
    by_revision: dict[str, list[PodState]] = {rev.name: [] for rev in revisions}
    by_revision.setdefault(update_rev, [])
    for p in states:
        if p.exists and not p.terminating:
            by_revision.setdefault(p.revision, []).append(p)
    numbers = {rev.name: rev.number for rev in revisions}
    counts = tuple(
        sorted(
            (
                RevisionPods(
                    name=rev,
                    number=numbers.get(rev),
                    indexes=tuple(p.index for p in members),
                    ready=sum(1 for p in members if p.available),
                    update=rev == update_rev,
                )
                for rev, members in by_revision.items()
                if rev
            ),
            key=lambda c: (not c.update, -(c.number or 0), c.name),
        )
    )
    updated = sum(1 for p in states if p.available and p.revision == update_rev)
    annotations = sts.metadata.annotations
    target = annotations.get(schema.ROLLOUT_TARGET, "")
    started = annotations.get(schema.ROLLOUT_STARTED_AT, "")
    finished = annotations.get(schema.ROLLOUT_FINISHED_AT, "")
    paused_at, paused = "", ""
    if target == update_rev and annotations.get(schema.ROLLOUT_PAUSED):
        paused = annotations[schema.ROLLOUT_PAUSED]
        match = _PAUSED.match(paused)
        if match:
            paused_at, paused = match.group(1), match.group(2)
    state: RolloutState
    if updated == replicas:
        state, message = "Complete", f"all {replicas} pods Ready on {update_rev}"
    elif paused:
        state, message = "Paused", f"since {paused_at or '?'}: {paused}"
    elif target == update_rev and started and not finished:
        state = "Progressing"
        message = (
            f"{updated}/{replicas} pods Ready on {update_rev}; rollout started {started} "
            f"(if ant was stopped, 'ant rollout {name}' carries on)"
        )
    else:
        state = "Pending"
        message = (
            f"{updated}/{replicas} pods Ready on {update_rev}; "
            f"'ant rollout {name}' replaces the rest"
        )
    last_update: Mapping[str, Any] | None = None
    raw = annotations.get(schema.LAST_UPDATE)
    if raw:
        try:
            parsed = json.loads(raw)
            last_update = parsed if isinstance(parsed, dict) else {"raw": raw}
        except ValueError:
            last_update = {"raw": raw}
    return RolloutStatus(
        name=name,
        namespace=sts.metadata.namespace,
        replicas=replicas,
        update_revision=update_rev,
        current_revision=sts.status.currentRevision,
        updated=updated,
        state=state,
        message=message,
        revisions=counts,
        unavailable=tuple(p for p in states if not p.available),
        target_revision=target,
        started_at=started,
        finished_at=finished,
        paused_at=paused_at,
        paused=paused,
        last_update=last_update,
    )
