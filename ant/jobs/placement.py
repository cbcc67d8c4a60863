"""Which of several clusters a new job goes to (``ant submit --clusters``; docs/clusters.md).

From each cluster's queue (``ant.jobs.queue``, the view ``ant queue`` shows). Its waiting
jobs are first given what is free, in queue order, each that fits taking its room: their
pods are already there and get bound before a new job's (a job placed a moment ago whose
pods are not bound yet is one of them). Then, in order:

1. the first listed cluster where the whole gang fits in what is left, for every
   accelerator the job asks for (replicas x the per-pod request);
2. else, of the clusters whose Ready nodes offer enough at all, the one where the least
   must free up before it starts: what it lacks now plus what the waiting jobs of its
   priority or higher still want (the scheduler serves those first); ties go to the
   fewest such jobs, then to the first listed;
3. else (no cluster answered, or none is big enough) the first listed.

The choice and why are recorded on the job (``ant.dev/placement``, docs/metadata.md).

A sweep spreads (``spread``): its jobs are placed one after another, each by the same
rule, each joining the queue of the cluster it went to, so the next one sees it.
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


@dataclass(frozen=True)
class Waiter:
    """A waiting job as placement sees it: its priority, and what its pods that are not
    bound yet ask for, per resource."""

    priority_value: int
    wants: Mapping[str, Fraction]


@dataclass
class Room:
    """What placement knows of one cluster: what is free of each resource (None:
    unknown), what its Ready nodes offer in all, and its waiting jobs in queue order."""

    free: dict[str, Fraction | None]
    allocatable: dict[str, Fraction] = field(default_factory=dict)
    waiting: list[Waiter] = field(default_factory=list)

    @classmethod
    def of(cls, queue: Queue) -> Room:
        return cls(
            {c.resource: c.free for c in queue.capacity},
            {c.resource: c.allocatable for c in queue.capacity},
            [
                Waiter(w.priority_value, {res: w.pending_requests(res) for res in w.requests})
                for w in queue.items
            ],
        )

    def join(self, waiter: Waiter) -> None:
        """A job placed here joins the queue behind those of its priority or higher."""
        at = next(
            (i for i, w in enumerate(self.waiting) if w.priority_value < waiter.priority_value),
            len(self.waiting),
        )
        self.waiting.insert(at, waiter)


@dataclass(frozen=True)
class Outlook:
    """One cluster for one job that wants ``wanted`` (its accelerators, ``resources``):
    ``left`` is free after the waiting jobs that fit took their room (None: unknown),
    ``ahead`` what waiting jobs of its priority or higher still want, ``ahead_jobs`` how
    many they are."""

    wanted: Mapping[str, Fraction]
    resources: list[str]
    free: Mapping[str, Fraction | None]
    left: Mapping[str, Fraction | None]
    ahead: Mapping[str, Fraction]
    ahead_jobs: int
    big_enough: bool  # its Ready nodes offer enough in all

    @property
    def fits(self) -> bool | None:
        """Whether the whole gang fits now; None: free capacity unknown."""
        if any(self.left[res] is None for res in self.resources):
            return None
        return all(self.wanted[res] <= (self.left[res] or 0) for res in self.resources)

    @property
    def must_free(self) -> dict[str, Fraction]:
        """Per resource, what must free up before the gang starts here."""
        return {
            res: max(Fraction(0), self.wanted[res] + self.ahead[res] - left)
            for res in self.resources
            if (left := self.left[res]) is not None
        }


def demand(replicas: int, resources: Mapping[str, str]) -> dict[str, Fraction]:
    """What the whole gang asks for, per resource (a job spec's ``resources`` per pod)."""
    return {name: parse_quantity(q) * replicas for name, q in resources.items()}


def outlook(room: Room, wanted: Mapping[str, Fraction], priority_value: int) -> Outlook:
    """What a job that wants ``wanted`` at ``priority_value`` would meet in ``room``."""
    resources = accelerators(wanted)
    left: dict[str, Fraction | None] = {res: room.free.get(res, Fraction(0)) for res in resources}
    ahead = dict.fromkeys(resources, Fraction(0))
    ahead_jobs = 0
    for waiter in room.waiting:
        wants = {res: waiter.wants.get(res, Fraction(0)) for res in resources}
        if all((free := left[res]) is not None and wants[res] <= free for res in resources):
            for res in resources:
                left[res] = (left[res] or Fraction(0)) - wants[res]
        elif waiter.priority_value >= priority_value:
            ahead_jobs += 1
            for res in resources:
                ahead[res] += wants[res]
    big_enough = all(wanted[res] <= room.allocatable.get(res, Fraction(0)) for res in resources)
    return Outlook(
        wanted,
        resources,
        {res: room.free.get(res, Fraction(0)) for res in resources},
        left,
        ahead,
        ahead_jobs,
        big_enough,
    )


def place(
    clusters: Sequence[str],
    rooms: Mapping[str, Room | None],
    wanted: Mapping[str, Fraction],
    priority_value: int,
) -> Placement:
    """The cluster for a job that wants ``wanted`` in all, at ``priority_value``;
    ``rooms``: each cluster's, None when it did not answer."""
    outlooks = {
        c: outlook(room, wanted, priority_value)
        for c in clusters
        if (room := rooms.get(c)) is not None
    }
    unknown = []
    for cluster, seen in outlooks.items():
        fits = seen.fits
        if fits:
            return Placement(cluster, f"the whole gang fits now ({_fit(seen)})", fits=True)
        if fits is None:
            unknown.append(cluster)
    blind = f" (free capacity unknown in {', '.join(unknown)})" if unknown else ""
    candidates = [c for c, seen in outlooks.items() if seen.big_enough and c not in unknown]
    if candidates:
        order = {c: i for i, c in enumerate(clusters)}

        def soonest(c: str) -> tuple[Fraction, int, int]:
            seen = outlooks[c]
            return sum(seen.must_free.values(), Fraction(0)), seen.ahead_jobs, order[c]

        cluster = min(candidates, key=soonest)
        seen = outlooks[cluster]
        lacking = ", ".join(f"{_number(q)} {res}" for res, q in seen.must_free.items())
        return Placement(
            cluster,
            f"it fits in no cluster now that ant can see{blind}; here the least must free up "
            f"before it starts ({lacking}; {seen.ahead_jobs} waiting job(s) of its priority "
            "or higher)",
        )
    if outlooks and not unknown:
        return Placement(clusters[0], _too_big(wanted, [rooms[c] for c in outlooks]))
    if unknown:
        return Placement(unknown[0], f"it fits in no cluster now that ant can see{blind}")
    return Placement(clusters[0], "no cluster answered; the first listed")


def spread(
    clusters: Sequence[str],
    rooms: Mapping[str, Room | None],
    wanted: Mapping[str, Fraction],
    priority_value: int,
    count: int,
) -> list[Placement]:
    """Where each of ``count`` jobs alike goes (a sweep), each placed against the queues
    the ones before it joined. ``rooms`` is left as it was."""
    left = {
        c: Room(dict(room.free), dict(room.allocatable), list(room.waiting))
        if room is not None
        else None
        for c, room in rooms.items()
    }
    placements = []
    for _ in range(count):
        chosen = place(clusters, left, wanted, priority_value)
        room = left.get(chosen.cluster)
        if room is not None:
            room.join(Waiter(priority_value, dict(wanted)))
        placements.append(chosen)
    return placements


def accelerators(wanted: Mapping[str, Fraction]) -> list[str]:
    """The resources placement weighs: all but CPU, memory and storage."""
    return sorted(r for r, q in wanted.items() if q and r not in CORE_RESOURCES)


def _fit(seen: Outlook) -> str:
    said = []
    for res in seen.resources:
        free, left = seen.free.get(res) or Fraction(0), seen.left.get(res) or Fraction(0)
        taken = f", {_number(free - left)} of them wanted by waiting jobs" if free > left else ""
        said.append(f"{_number(seen.wanted[res])} {res} of {_number(free)} free{taken}")
    return ", ".join(said) or "it asks for no accelerator"


def _too_big(wanted: Mapping[str, Fraction], rooms: Sequence[Room | None]) -> str:
    """Why a gang no cluster could hold even empty goes to the first listed."""
    said = []
    for res in accelerators(wanted):
        most = max((r.allocatable.get(res, Fraction(0)) for r in rooms if r), default=Fraction(0))
        if wanted[res] > most:
            said.append(f"{_number(wanted[res])} {res} wanted, at most {_number(most)}")
    return (
        f"it fits in no cluster, not even an empty one ({', '.join(said)} on any cluster's "
        "Ready nodes); the first listed"
    )


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
