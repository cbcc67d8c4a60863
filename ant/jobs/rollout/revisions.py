"""Reading a job's StatefulSet: the object, its pod selector, its ControllerRevisions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ant.errors import (
    DecodeError,
    Gone,
    NotFoundError,
    RequestTimeout,
    UsageError,
)
from ant.jobs.lifecycle import get_statefulset
from ant.jobs.rollout.options import (
    parse_target,
)
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.watch import follow

OBSERVE_TIMEOUT = 30.0


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.daemon = True
    timer.start()
    rv = sts.metadata.resourceVersion
    try:
        while not stop.is_set():
            try:
                for event in follow(
                    client,
                    r.STATEFULSETS,
                    rv,
                    namespace,
                    field_selector=f"metadata.name={name}",
                    timeout_seconds=max(1, int(deadline - time.monotonic()) + 1),
                    stop=stop,
                ):
                    if event.type == "BOOKMARK":
                        continue
                    if event.type == "DELETED":
                        raise NotFoundError(f"job {name} was deleted")
                    sts = event.object
                    if observed(sts):
                        return sts
            except Gone:
                sts = client.get(r.STATEFULSETS, name, namespace)
                rv = sts.metadata.resourceVersion
                if observed(sts):
                    return sts
    finally:
        timer.cancel()
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
        created_at=datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if created
        else "",
    )
