"""ant's PriorityClasses: the three levels ``ant submit --priority`` maps to.

Values leave room below and above for a cluster's own classes, and stay far
below system-cluster-critical (2,000,000,000). ``ant-opportunistic`` never
preempts (``preemptionPolicy: Never``): it waits for free capacity, and is the
first to be preempted when higher-priority work needs it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ant.errors import NotFound
from ant.jobs import schema
from ant.kube import resources as r
from ant.kube.client import Client

State = Literal["missing", "installed", "differs"]


@dataclass(frozen=True)
class PriorityLevel:
    priority: str
    value: int
    preemption_policy: str
    description: str

    @property
    def name(self) -> str:
        return schema.priority_class(self.priority)


LEVELS = (
    PriorityLevel(
        "opportunistic",
        1_000,
        "Never",
        "ant: runs on idle capacity, never preempts, preempted first.",
    ),
    PriorityLevel("normal", 10_000, "PreemptLowerPriority", "ant: the default for jobs."),
    PriorityLevel(
        "high", 100_000, "PreemptLowerPriority", "ant: preempts normal and opportunistic."
    ),
)


@dataclass(frozen=True)
class LevelState:
    level: PriorityLevel
    state: State
    detail: str = ""


def inspect(client: Client) -> list[LevelState]:
    return [_state(client, level) for level in LEVELS]


def _state(client: Client, level: PriorityLevel) -> LevelState:
    try:
        found = client.get(r.PRIORITY_CLASSES, level.name)
    except NotFound:
        return LevelState(level, "missing")
    differences = []
    if found.value != level.value:
        differences.append(f"value {found.value}, ant expects {level.value}")
    if (found.preemptionPolicy or "PreemptLowerPriority") != level.preemption_policy:
        differences.append(
            f"preemptionPolicy {found.preemptionPolicy}, ant expects {level.preemption_policy}"
        )
    if differences:
        return LevelState(level, "differs", "; ".join(differences))
    return LevelState(level, "installed")


def install(client: Client, *, dry_run: bool = False) -> list[LevelState]:
    """Create the missing classes; report (never change) ones that differ: values are immutable."""
    states = inspect(client)
    for s in states:
        if s.state == "missing":
            client.create(r.PRIORITY_CLASSES, _message(s.level), dry_run=dry_run)
    return states


def _message(level: PriorityLevel) -> Any:
    pc = r.new(r.PRIORITY_CLASSES)
    pc.metadata.name = level.name
    pc.metadata.labels[schema.MANAGED_BY] = schema.MANAGED_BY_VALUE
    pc.value = level.value
    pc.preemptionPolicy = level.preemption_policy
    pc.globalDefault = False
    pc.description = level.description
    return pc
