"""Which of several clusters a new job goes to (``ant submit --clusters``; docs/clusters.md).

From each cluster's queue (``ant.jobs.queue``, the view ``ant queue`` shows), in order:

1. the first listed cluster where the whole gang fits now: for every accelerator the job
   asks for, what is free in the cluster (Ready nodes, node by node) covers replicas x
   the per-pod request;
2. else the cluster where it would start soonest by queue position: the fewest waiting
   jobs of its priority or higher (the scheduler takes them first); ties go to the first
   listed;
3. else (no cluster answered) the first listed.

The choice and why are recorded on the job (``ant.dev/placement``, docs/metadata.md).

A sweep spreads (``spread``): its jobs are placed one after another, each by the same
rule, against what the ones before it took: a job placed where it fits takes that room,
one placed by queue position joins that queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from ant.jobs.queue import Queue
from ant.kube.quantity import parse_quantity

CORE_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


@dataclass(frozen=True)
class Placement:
    cluster: str
    reason: str
    fits: bool = False  # the whole gang fits there now


@dataclass
class Room:
    """What placement knows of one cluster: what is free of each resource (None:
    unknown), and the priority values of the jobs waiting there."""

    free: dict[str, Fraction | None]
    waiting: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, queue: Queue) -> Room:
        return cls(
            {c.resource: c.free for c in queue.capacity}, [w.priority_value for w in queue.items]
        )


def demand(replicas: int, resources: Mapping[str, str]) -> dict[str, Fraction]:
    """What the whole gang asks for, per resource (a job spec's ``resources`` per pod)."""
    return {name: parse_quantity(q) * replicas for name, q in resources.items()}


def place(
    clusters: Sequence[str],
    rooms: Mapping[str, Room | None],
    wanted: Mapping[str, Fraction],
    priority_value: int,
) -> Placement:
    """The cluster for a job that wants ``wanted`` in all, at ``priority_value``;
    ``rooms``: each cluster's, None when it did not answer."""
    answered = [(c, room) for c in clusters if (room := rooms.get(c)) is not None]
    unknown = []
    for cluster, room in answered:
        fits, why = _fits(room, wanted)
        if fits:
            return Placement(cluster, f"the whole gang fits now ({why})", fits=True)
        if fits is None:
            unknown.append(cluster)
    if answered:
        ahead = {c: sum(1 for p in room.waiting if p >= priority_value) for c, room in answered}
        cluster = min(answered, key=lambda cq: ahead[cq[0]])[0]
        blind = f" (free capacity unknown in {', '.join(unknown)})" if unknown else ""
        return Placement(
            cluster,
            f"it fits in no cluster now that ant can see{blind}; {ahead[cluster]} waiting "
            "job(s) of its priority or higher here, the fewest",
        )
    return Placement(clusters[0], "no cluster answered; the first listed")


def spread(
    clusters: Sequence[str],
    rooms: Mapping[str, Room | None],
    wanted: Mapping[str, Fraction],
    priority_value: int,
    count: int,
) -> list[Placement]:
    """Where each of ``count`` jobs alike goes (a sweep), each placed against what the
    ones before it took. ``rooms`` is left as it was."""
    left = {
        c: Room(dict(room.free), list(room.waiting)) if room is not None else None
        for c, room in rooms.items()
    }
    placements = []
    for _ in range(count):
        chosen = place(clusters, left, wanted, priority_value)
        room = left.get(chosen.cluster)
        if room is not None and chosen.fits:
            for resource in accelerators(wanted):
                free = room.free.get(resource)
                if free is not None:
                    room.free[resource] = free - wanted[resource]
        elif room is not None:
            room.waiting.append(priority_value)
        placements.append(chosen)
    return placements


def accelerators(wanted: Mapping[str, Fraction]) -> list[str]:
    """The resources placement weighs: all but CPU, memory and storage."""
    return sorted(r for r, q in wanted.items() if q and r not in CORE_RESOURCES)


def _fits(room: Room, wanted: Mapping[str, Fraction]) -> tuple[bool | None, str]:
    """Whether the gang fits in this cluster now (None: unknown), and the numbers."""
    free_of = room.free
    said = []
    for resource in accelerators(wanted):
        if resource not in free_of:
            return False, f"no {resource}"
        free = free_of[resource]
        if free is None:
            return None, f"{resource} free unknown"
        if free < wanted[resource]:
            return False, f"{_number(free)} {resource} free"
        said.append(f"{_number(wanted[resource])} {resource} of {_number(free)} free")
    return True, ", ".join(said) or "it asks for no accelerator"


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
