"""``ant submit --clusters``: asking each selected cluster what room it has, and placing
a job (or spreading a sweep) by ``ant.jobs.placement``'s rule (docs/clusters.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ant.cli import clusters as across

if TYPE_CHECKING:
    from ant.cli.context import App
    from ant.jobs.placement import Placement, Room
    from ant.jobs.queue import Queue
    from ant.jobs.spec import JobSpec


def rooms(app: App, clusters: list[str], job: JobSpec) -> dict[str, Room | None]:
    """Each cluster's room for ``job`` (None where it did not answer, said on stderr):
    its queue, asked of every cluster at once, as ``ant queue`` reads it."""
    from ant.cache.client import cached_capacity
    from ant.jobs import placement
    from ant.jobs.queue import get_queue

    resources = placement.accelerators(placement.demand(job.replicas, job.resources))

    def queue_of(on: App) -> Queue:
        return get_queue(
            on.reader,
            on.namespace,
            resources=resources,
            cached_usage=lambda: cached_capacity(on.reader),
        )

    answers = across.ask_each(app, clusters, queue_of)
    for answer in answers:
        if answer.error is not None:
            app.terminal.warn(f"cluster {answer.cluster} did not answer: {answer.error}")
    return {a.cluster: placement.Room.of(a.value) if a.value is not None else None for a in answers}


def place(app: App, clusters: list[str], job: JobSpec) -> tuple[App, str]:
    """The app of the cluster the job goes to, and the placement recorded on it. Said on
    stderr."""
    from ant.jobs import placement

    chosen = placement.place(
        clusters,
        rooms(app, clusters, job),
        placement.demand(job.replicas, job.resources),
        priority_value(job),
    )
    app.terminal.info(f"placing the job in {chosen.cluster}: {chosen.reason}")
    return app.for_cluster(
        chosen.cluster, app.deadline_seconds
    ), f"{chosen.cluster}: {chosen.reason}"


def spread(app: App, clusters: list[str], job: JobSpec, count: int) -> list[Placement]:
    """Where each of a sweep's ``count`` jobs goes; one line on stderr per cluster used."""
    from ant.jobs import placement

    placed = placement.spread(
        clusters,
        rooms(app, clusters, job),
        placement.demand(job.replicas, job.resources),
        priority_value(job),
        count,
    )
    for cluster in clusters:
        here = [p for p in placed if p.cluster == cluster]
        if here:
            fit = sum(1 for p in here if p.fits)
            app.terminal.info(
                f"placing {len(here)} job(s) in {cluster}: {fit} fit now, "
                f"{len(here) - fit} wait in its queue"
            )
    return placed


def priority_value(job: JobSpec) -> int:
    from ant.jobs.priorities import LEVELS

    return next(level.value for level in LEVELS if level.priority == job.priority)
