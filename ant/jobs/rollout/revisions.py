"""Reading a job's StatefulSet: the object, its pod selector, its ControllerRevisions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ant.errors import (
    DecodeError,
    NotFoundError,
    RequestTimeout,
    UsageError,
)
from ant.jobs.documents import rfc3339
from ant.jobs.lifecycle import get_statefulset
from ant.jobs.rollout.options import (
    parse_target,
)
from ant.kube import resources as r
from ant.kube.client import Client, WatchEvent
from ant.kube.watch import watch_until

OBSERVE_TIMEOUT = 30.0


def utc_now() -> str:
    return rfc3339(datetime.now(UTC))


def load(client: Client, namespace: str, target: str) -> Any:
    """The StatefulSet for ``JOB`` or ``statefulset/NAME`` (see ``parse_target``)."""
    name, any_owner = parse_target(target)
    return get_statefulset(client, namespace, name, any_owner=any_owner)


def pod_selector(sts: Any) -> str:
    """The StatefulSet's ``spec.selector`` as a label selector string."""
    selector = sts.spec.selector
    parts = [f"{k}={v}" for k, v in sorted(selector.matchLabels.items())]
    for expr in selector.matchExpressions:
        values = ",".join(expr.values)
        parts.append(
            {
                "In": f"{expr.key} in ({values})",
                "NotIn": f"{expr.key} notin ({values})",
                "Exists": expr.key,
                "DoesNotExist": f"!{expr.key}",
            }.get(expr.operator, "")
        )
    parts = [p for p in parts if p]
    if not parts:
        raise UsageError(f"statefulset {sts.metadata.name} has an empty selector; ant leaves it")
    return ",".join(parts)


def observed(sts: Any) -> bool:
    return bool(sts.status.observedGeneration >= sts.metadata.generation)


def wait_observed(client: Client, sts: Any, timeout: float = OBSERVE_TIMEOUT) -> Any:
    """The StatefulSet once its controller has seen its latest spec (so ``updateRevision`` is
    current): returned at once if it has, else watched (one WATCH, not polled)."""
    if observed(sts):
        return sts
    namespace, name = sts.metadata.namespace, sts.metadata.name
    latest = sts

    def on_event(event: WatchEvent[Any]) -> bool:
        nonlocal latest
        if event.type == "BOOKMARK":
            return False
        if event.type == "DELETED":
            raise NotFoundError(f"job {name} was deleted")
        latest = event.object
        return observed(latest)

    def relist() -> tuple[str, bool]:
        nonlocal latest
        latest = client.get(r.STATEFULSETS, name, namespace)
        return latest.metadata.resourceVersion, observed(latest)

    if watch_until(
        client,
        r.STATEFULSETS,
        sts.metadata.resourceVersion,
        on_event,
        relist,
        timeout,
        namespace,
        field_selector=f"metadata.name={name}",
    ):
        return latest
    raise RequestTimeout(
        f"the StatefulSet controller has not processed the latest change of {name} "
        f"after {timeout:.0f}s",
        hint="is kube-controller-manager running? 'ant rollout status' shows the revisions",
    )


@dataclass(frozen=True)
class Revision:
    """A ControllerRevision of the StatefulSet: one pod template it has had."""

    name: str
    number: int
    template: Mapping[str, Any] = field(repr=False)
    created_at: str = ""


def list_revisions(client: Client, sts: Any) -> list[Revision]:
    """The StatefulSet's ControllerRevisions (label query, then its owner uid), oldest first."""
    listed = client.list(
        r.CONTROLLER_REVISIONS, sts.metadata.namespace, label_selector=pod_selector(sts)
    )
    return sorted(
        (
            _revision(cr)
            for cr in listed.items
            if any(ref.uid == sts.metadata.uid for ref in cr.metadata.ownerReferences)
        ),
        key=lambda rev: rev.number,
    )


def _revision(cr: Any) -> Revision:
    # data is the StatefulSet patch the controller saved: {"spec": {"template": {..., "$patch":
    # "replace"}}}, as JSON in a RawExtension.
    try:
        data = json.loads(cr.data.raw) if cr.data.raw else {}
        template = dict(data["spec"]["template"])
    except (ValueError, KeyError, TypeError) as e:
        raise DecodeError(
            f"controllerrevision {cr.metadata.name} does not hold a StatefulSet template"
        ) from e
    template.pop("$patch", None)
    created = cr.metadata.creationTimestamp.seconds
    return Revision(
        name=cr.metadata.name,
        number=cr.revision,
        template=template,
        created_at=rfc3339(datetime.fromtimestamp(created, UTC)) if created else "",
    )
