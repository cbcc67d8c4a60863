"""Whose job it is: ant writes to the caller's own jobs only, unless told otherwise.

A job's owner is its ``ant.dev/created-by`` label (``ant.jobs.identity``); the caller is
whom the API server says. In a shared namespace RBAC lets alice delete bob's job, so
every command that changes a job (restart, delete, update, rollout, rollback) asks
``check`` first: someone else's job is refused with ``NotOwner`` (exit 9) naming its
owner, unless the caller forces it. A StatefulSet ant did not create (``statefulset/NAME``)
has no owner here, and a job whose label is missing neither: both are the caller's call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from ant.errors import NotFound, NotOwner
from ant.jobs import schema
from ant.jobs.identity import Identity
from ant.jobs.model import Job
from ant.kube import resources as r
from ant.kube.client import Client


@dataclass(frozen=True)
class Owner:
    label: str  # ant.dev/created-by
    username: str  # ant.dev/created-by-full when recorded, else the label

    def is_(self, identity: Identity) -> bool:
        return self.label == identity.label


def owner_of(labels: Mapping[str, str], annotations: Mapping[str, str]) -> Owner | None:
    """The owner a job's labels and annotations record; None when they record none."""
    label = labels.get(schema.CREATED_BY, "")
    if not label:
        return None
    return Owner(label, annotations.get(schema.CREATED_BY_FULL) or label)


def job_owner(job: Job) -> Owner | None:
    return Owner(job.user, job.user_full or job.user) if job.user else None


def check(
    name: str,
    namespace: str,
    owner: Owner | None,
    me: Identity,
    *,
    force: bool,
    flag: str,
    probe: Callable[[], object] | None = None,
) -> Owner | None:
    """Refuse to act on someone else's job unless ``force``; returns that other owner
    (the caller's own jobs, and unowned ones, give None). ``flag`` says how to force.

    ``probe``: the command's first write as a server-side dry run. Before refusing, ant
    asks it: when the cluster would refuse the write anyway (403, exit 4), that is the
    real reason, and forcing would not help."""
    if owner is None or owner.is_(me):
        return None
    if not force:
        if probe is not None:
            with suppress(NotFound):
                probe()
        raise NotOwner(
            f"job {name} in {namespace} belongs to {owner.username}, not to you ({me.username})",
            hint=f"{flag} acts on it anyway",
        )
    return owner


def dry_run_delete(client: Client, resource: Any, namespace: str, name: str) -> Callable[[], None]:
    """A probe: deleting this object, as a server-side dry run."""
    return lambda: client.delete(resource, name, namespace, dry_run=True)


def dry_run_patch(client: Client, namespace: str, name: str) -> Callable[[], object]:
    """A probe: patching the job's StatefulSet (with nothing), as a server-side dry run."""
    return lambda: client.patch(r.STATEFULSETS, name, {}, namespace, dry_run=True)


def owners(client: Client, namespace: str, names: Sequence[str]) -> dict[str, Owner | None]:
    """The owner of each named job that exists (one GET each, concurrently)."""

    def one(name: str) -> tuple[str, Owner | None] | None:
        try:
            sts = client.get(r.STATEFULSETS, name, namespace)
        except NotFound:
            return None  # the command itself says it is not there
        return name, owner_of(sts.metadata.labels, sts.metadata.annotations)

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(names)))) as pool:
        return dict(found for found in pool.map(one, names) if found is not None)
