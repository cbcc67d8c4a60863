"""What a rollout is asked to do: ``ant rollout``'s options, parsed and checked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal

from ant.errors import (
    UsageError,
    ValidationError,
)
from ant.jobs import schema

Order = Literal["descending", "ascending"]
OnFailure = Literal["pause", "continue"]

DEFAULT_TIMEOUT = 600.0

STATEFULSET_KINDS = frozenset({"statefulset", "statefulsets", "sts", "statefulset.apps"})
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_BUDGET = re.compile(r"^(\d{1,9})(%?)$")
# A StatefulSet's replicas is an int32: an index has at most 10 digits (parsing is then cheap).
_MAX_INDEX_DIGITS = 10


@dataclass(frozen=True)
class Budget:
    """``--max-unavailable``: a number of pods, or a percentage of the job's replicas."""

    value: int
    percent: bool = False

    def resolve(self, replicas: int) -> int:
        """Pods allowed unavailable; a percentage is rounded down, but is at least 1."""
        if self.percent:
            return max(1, replicas * self.value // 100)
        return self.value

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


DEFAULT_BUDGET = Budget(1)


def parse_budget(text: str, flag: str = "--max-unavailable") -> Budget:
    match = _BUDGET.match(text.strip())
    if not match:
        raise ValidationError(flag, f"{text!r} is not a number of pods or a percentage")
    value, percent = int(match.group(1)), bool(match.group(2))
    if value < 1:
        raise ValidationError(flag, "must be at least 1", hint="a rollout must replace pods")
    if percent and value > 100:
        raise ValidationError(flag, f"{text} is more than 100%")
    return Budget(value, percent)


class Replicas(AbstractSet[int]):
    """Replica indexes kept as sorted, merged ranges: membership, size and the part beyond
    a job's size are computed from the ranges, so ``0-999999999`` is never expanded."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        self.ranges = tuple(merged)

    @classmethod
    def of(cls, indexes: Iterable[int]) -> Replicas:
        return indexes if isinstance(indexes, Replicas) else cls((i, i) for i in indexes)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and any(low <= index <= high for low, high in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for low, high in self.ranges:
            yield from range(low, high + 1)

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high in self.ranges)

    def from_index(self, first: int) -> Replicas:
        """The indexes at or above ``first``."""
        return Replicas((max(low, first), high) for low, high in self.ranges if high >= first)

    def __str__(self) -> str:
        return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in self.ranges)

    def __repr__(self) -> str:
        return f"Replicas({self})"


def parse_replicas(text: str, flag: str = "--replicas") -> Replicas:
    """``0,3,5-7`` -> {0, 3, 5, 6, 7}, as ranges (nothing is expanded here)."""
    ranges: list[tuple[int, int]] = []
    for part in (p.strip() for p in text.split(",")):
        match = _RANGE.match(part)
        if not match:
            raise ValidationError(
                flag, f"{part!r} is not a replica or a range", hint="e.g. 0,3,5-7"
            )
        if any(len(g) > _MAX_INDEX_DIGITS for g in match.groups() if g):
            raise ValidationError(flag, f"{part!r} is beyond any job's size", hint="e.g. 0,3,5-7")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ValidationError(flag, f"{part!r} is a backwards range", hint="write low-high")
        ranges.append((low, high))
    return Replicas(ranges)


def format_indexes(indexes: Iterable[int]) -> str:
    """{0, 1, 2, 5} -> ``0-2,5``: the inverse of ``parse_replicas``."""
    return str(Replicas.of(indexes))


@dataclass(frozen=True)
class RolloutOptions:
    max_unavailable: Budget | None = None
    batch_size: int | None = None
    replicas: AbstractSet[int] | None = None  # None: every replica (parse_replicas: Replicas)
    order: Order = "descending"
    timeout: float = DEFAULT_TIMEOUT  # per batch (and per wait for the budget)
    on_failure: OnFailure = "pause"

    def __post_init__(self) -> None:
        if self.max_unavailable is not None and self.batch_size is not None:
            raise UsageError("--batch-size and --max-unavailable cannot be used together")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValidationError("--batch-size", "must be at least 1")
        if self.replicas is not None and not self.replicas:
            raise ValidationError("--replicas", "names no replica")
        if self.timeout <= 0:
            raise ValidationError("--timeout", "must be positive")

    @property
    def budget(self) -> Budget:
        return self.max_unavailable or DEFAULT_BUDGET

    def describe_limit(self, replicas: int) -> str:
        if self.batch_size is not None:
            return f"batches of {self.batch_size}"
        budget = self.budget
        limit = budget.resolve(replicas)
        detail = f" ({budget} of {replicas})" if budget.percent else ""
        return f"at most {limit} unavailable{detail}"


def parse_target(text: str) -> tuple[str, bool]:
    """``JOB`` -> (JOB, False); ``statefulset/NAME`` -> (NAME, True): any StatefulSet, named."""
    kind, sep, name = text.partition("/")
    if not sep:
        schema.validate_job_name(text, "job")
        return text, False
    if kind.lower() not in STATEFULSET_KINDS or not name or "/" in name:
        raise UsageError(
            f"{text!r} is not a job name",
            hint="name a job, or statefulset/NAME for any StatefulSet",
        )
    schema.validate_object_name(name, "job")
    return name, True
