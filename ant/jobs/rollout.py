"""Updates and rollouts of OnDelete StatefulSets (docs/rollout.md).

A job's StatefulSet uses ``updateStrategy: OnDelete``: changing its pod template
(``update``, ``rollback``) only makes a new revision, ``status.updateRevision``.
Nothing restarts until ant deletes a pod; the controller then recreates it on the
update revision. ``run`` decides which pods go, when:

- **Planning is pure.** ``plan(sts, pods, options)`` turns what the cluster shows into
  batches; it needs no cluster and is unit-tested on its own.
- **Every step re-observes.** The executor keeps the pods in a ``PodTracker`` (one LIST,
  then WATCH requests that resume from the last resourceVersion) and re-plans from it
  before each batch; it never polls pod by pod.
- **The budget.** ``--max-unavailable`` bounds the job's unavailable pods (missing,
  terminating or not Ready), whatever made them so: pods already down count against it.
  Replacing a pod that is already unavailable costs nothing, so those go first.
  ``--batch-size`` is a fixed number of pods replaced at a time (the rollout's own pods
  still coming back fill its slots).
- **At most one deletion per pod and revision.** A pod on the update revision is never
  deleted; a terminating or missing pod is only waited for; every DELETE carries the
  pod's uid as a precondition, so a pod already replaced (by anyone) is never deleted.
- **Resumable.** There is no local state: pods carry their revision, the StatefulSet
  carries the rollout's annotations (``schema.ROLLOUT_*``). Running the same rollout
  again after any interruption, ``kill -9`` included, carries on where it stopped.
- **No printing.** Progress goes to a callback; failures are ``ant.errors`` exceptions
  (``RolloutPaused`` when a pod does not become Ready in time).

Updates use optimistic concurrency: the patch names the resourceVersion it was computed
from; on a 409 the user's *change* is applied again to a fresh read, so a concurrent edit
by someone else is kept, never overwritten.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ant.errors import (
    Conflict,
    DecodeError,
    Gone,
    NotFound,
    NotFoundError,
    RequestTimeout,
    RolloutPaused,
    Status,
    UsageError,
    ValidationError,
)
from ant.jobs import schema
from ant.jobs.lifecycle import get_statefulset
from ant.jobs.manifest import CONTAINER, deep_merge
from ant.jobs.model import job_from
from ant.jobs.podwatch import Pods, PodTracker, is_ready
from ant.kube import resources as r
from ant.kube.client import Client
from ant.kube.watch import follow

Order = Literal["descending", "ascending"]
OnFailure = Literal["pause", "continue"]
Phase = Literal["waiting", "deleting", "replacing", "done"]

DEFAULT_TIMEOUT = 600.0
# How long update/rollback/rollout wait for the StatefulSet controller to compute a revision.
OBSERVE_TIMEOUT = 30.0
UPDATE_ATTEMPTS = 5
DELETE_THREADS = 16  # concurrent DELETEs within a batch (the transport pools 32 connections)
_STATEFULSET_KINDS = frozenset({"statefulset", "statefulsets", "sts", "statefulset.apps"})
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_BUDGET = re.compile(r"^(\d+)(%?)$")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# =============================================================================
# Options
# =============================================================================


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


def parse_replicas(text: str, flag: str = "--replicas") -> frozenset[int]:
    """``0,3,5-7`` -> {0, 3, 5, 6, 7}."""
    chosen: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise ValidationError(
                flag, f"{part.strip()!r} is not a replica or a range", hint="e.g. 0,3,5-7"
            )
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ValidationError(
                flag, f"{part.strip()!r} is a backwards range", hint="write low-high"
            )
        chosen.update(range(low, high + 1))
    return frozenset(chosen)


def format_indexes(indexes: Iterable[int]) -> str:
    """{0, 1, 2, 5} -> ``0-2,5``: the inverse of ``parse_replicas``."""
    out: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


@dataclass(frozen=True)
class RolloutOptions:
    max_unavailable: Budget | None = None
    batch_size: int | None = None
    replicas: frozenset[int] | None = None  # None: every replica
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
        return text, False
    if kind.lower() not in _STATEFULSET_KINDS or not name or "/" in name:
        raise UsageError(
            f"{text!r} is not a job name",
            hint="name a job, or statefulset/NAME for any StatefulSet",
        )
    return name, True


# =============================================================================
# Observing pods, and the plan
# =============================================================================


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

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "exists": self.exists,
            "revision": self.revision,
            "ready": self.ready,
            "terminating": self.terminating,
            "reason": self.why() if not self.available else "",
        }


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
        outside = sorted(i for i in options.replicas if i >= replicas)
        if outside:
            have = f"0-{replicas - 1}" if replicas else "none"
            raise ValidationError(
                "--replicas",
                f"{format_indexes(outside)} out of range: {name} has replicas {have}",
            )
        selected = tuple(sorted(options.replicas))
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
            if cost > capacity:
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


# =============================================================================
# Reading the StatefulSet
# =============================================================================


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


def _observed(sts: Any) -> bool:
    return bool(sts.status.observedGeneration >= sts.metadata.generation)


def wait_observed(client: Client, sts: Any, timeout: float = OBSERVE_TIMEOUT) -> Any:
    """The StatefulSet once its controller has seen its latest spec (so ``updateRevision`` is
    current): returned at once if it has, else watched (one WATCH, not polled)."""
    if _observed(sts):
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
                    if _observed(sts):
                        return sts
            except Gone:
                sts = client.get(r.STATEFULSETS, name, namespace)
                rv = sts.metadata.resourceVersion
                if _observed(sts):
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


# =============================================================================
# Template changes (ant update) and rollback
# =============================================================================


@dataclass(frozen=True)
class TemplateChange:
    """What ``ant update`` changes: kept as the change, so it can be re-applied to fresh state."""

    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    pod_template: Mapping[str, Any] = field(default_factory=dict)  # -f FILE, merged first
    pod_template_source: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)  # StatefulSet annotations

    @property
    def empty(self) -> bool:
        return not (
            self.image
            or self.env
            or self.unset_env
            or self.command is not None
            or self.pod_template
            or self.meta
        )

    def describe(self) -> list[str]:
        out = []
        if self.pod_template:
            out.append(f"podTemplate from {self.pod_template_source or 'a file'}")
        if self.image:
            out.append(f"image {self.image}")
        out += [f"env {k}={v}" for k, v in self.env.items()]
        out += [f"unset env {k}" for k in self.unset_env]
        if self.command is not None:
            out.append(f"command {shlex.join(self.command)}")
        out += [f"meta {k}={v}" for k, v in self.meta.items()]
        return out


def apply_change(template: Mapping[str, Any], change: TemplateChange) -> dict[str, Any]:
    """The pod template (Kubernetes JSON) with the change applied; ``template`` is untouched.

    The file fragment merges first (maps by key, named lists by name, as in job specs),
    then the flags, on the container named ``main`` (or the only container).
    """
    new = copy.deepcopy(dict(template))
    if change.pod_template:
        new = deep_merge(new, copy.deepcopy(dict(change.pod_template)))
    if not (change.image or change.env or change.unset_env or change.command is not None):
        return new
    spec = new.setdefault("spec", {})
    container = _main_container(spec.get("containers") or [])
    if change.image:
        container["image"] = change.image
    if change.command is not None:
        container["command"] = list(change.command)
        container.pop("args", None)  # the new command line is the whole of it
    env = [dict(e) for e in container.get("env") or []]
    for key in change.unset_env:
        if not any(e.get("name") == key for e in env):
            raise ValidationError(
                "--unset-env", f"{key} is not set in container {container.get('name')}"
            )
        env = [e for e in env if e.get("name") != key]
    for key, value in change.env.items():
        entry = {"name": key, "value": value}
        at = next((i for i, e in enumerate(env) if e.get("name") == key), None)
        if at is None:
            env.append(entry)
        else:
            env[at] = entry
    if env or "env" in container:
        container["env"] = env
    return new


def _main_container(containers: list[dict[str, Any]]) -> dict[str, Any]:
    for c in containers:
        if c.get("name") == CONTAINER:
            return c
    if len(containers) == 1:
        return containers[0]
    names = ", ".join(str(c.get("name")) for c in containers) or "none"
    raise ValidationError(
        "update",
        f"the pod template has containers {names} and none is called {CONTAINER}",
        hint="change other containers with -f FILE",
    )


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``: only what differs."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            before = old[key]
            if isinstance(before, Mapping) and isinstance(value, Mapping):
                patch[key] = merge_patch(before, value)
            else:
                patch[key] = value
    return patch


def template_diff(before: Mapping[str, Any], after: Mapping[str, Any], name: str) -> str:
    """A unified diff of two pod templates as YAML (empty fields left out); "" when equal."""
    import yaml

    def text(template: Mapping[str, Any]) -> list[str]:
        dumped = yaml.safe_dump(_pruned(template), sort_keys=True, default_flow_style=False)
        return str(dumped).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(
            text(before), text(after), f"{name} pod template (now)", f"{name} pod template (new)"
        )
    )


def _pruned(value: Any) -> Any:
    """Without the empty strings, maps and lists protobuf fills in (they mean "unset")."""
    if isinstance(value, Mapping):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ("", {}, [], None)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _check_template(template: Mapping[str, Any]) -> None:
    """Client-side check of a new pod template: unknown fields and bad values, with their path."""
    from ant.kube.convert import to_message
    from ant.kube.proto import core_v1_pb2

    try:
        to_message(template, core_v1_pb2.PodTemplateSpec)
    except ValidationError as e:
        raise ValidationError(
            f"podTemplate ({e.field})", e.message.split(": ", 1)[-1], hint=e.hint
        ) from e


@dataclass(frozen=True)
class UpdateResult:
    name: str
    namespace: str
    previous_revision: str
    revision: str  # status.updateRevision afterwards; "" if not known (dry run, slow controller)
    changed: bool  # the pod template changed: a new revision
    diff: str
    attempts: int = 1
    restored: Revision | None = None  # rollback: the revision whose template came back
    statefulset: Any = field(default=None, repr=False)
    written: bool = True  # False: nothing to change, nothing was sent


def _conflict(message: str) -> Conflict:
    return Conflict(Status(code=409, reason="Conflict", message=message))


def _record(by: str, at: str, changes: Sequence[str], previous: str) -> str:
    return json.dumps(
        {"by": by, "at": at, "changes": list(changes), "previousRevision": previous},
        separators=(",", ":"),
    )


def update(
    client: Client,
    namespace: str,
    target: str,
    change: TemplateChange,
    *,
    by: str,
    at: str | None = None,
    dry_run: bool = False,
    attempts: int = UPDATE_ATTEMPTS,
    observe_timeout: float = OBSERVE_TIMEOUT,
) -> UpdateResult:
    """Apply ``change`` to the job's pod template (and meta annotations), recorded in
    ``ant.dev/last-update``. Nothing restarts: the new revision waits for ``run``.

    The patch is a JSON merge patch of what changed, carrying the resourceVersion it was
    computed from. On a conflict the StatefulSet is read again and the change re-applied.
    """
    from ant.kube.convert import to_dict

    for key in change.meta:
        schema.validate_meta_key(key, "--meta")
    if change.empty:
        raise UsageError("nothing to update", hint="give --image, --env, -f FILE, -- COMMAND ...")
    for attempt in range(1, attempts + 1):
        sts = wait_observed(client, load(client, namespace, target), observe_timeout)
        name, previous = sts.metadata.name, sts.status.updateRevision
        before = to_dict(sts.spec.template)
        after = apply_change(before, change)
        template_patch = merge_patch(before, after)
        annotations = dict(sts.metadata.annotations)
        meta = {
            schema.META_PREFIX + k: v
            for k, v in change.meta.items()
            if annotations.get(schema.META_PREFIX + k) != v
        }
        if not template_patch and not meta:
            return UpdateResult(
                name, namespace, previous, previous, False, "", attempt, None, sts, written=False
            )
        if template_patch:
            _check_template(after)
        if not dry_run:
            meta[schema.LAST_UPDATE] = _record(by, at or utc_now(), change.describe(), previous)
        schema.validate_annotations_size({**annotations, **meta})
        body: dict[str, Any] = {
            "metadata": {"resourceVersion": sts.metadata.resourceVersion, "annotations": meta}
        }
        if template_patch:
            body["spec"] = {"template": template_patch}
        try:
            patched = client.patch(r.STATEFULSETS, name, body, namespace, dry_run=dry_run)
        except Conflict:
            continue  # someone else wrote first: apply the change again to what they wrote
        diff = template_diff(before, to_dict(patched.spec.template), name)
        changed = bool(template_patch)
        revision = ""
        if not dry_run:
            patched = _observed_or_same(client, patched, observe_timeout)
            revision = patched.status.updateRevision if _observed(patched) else ""
        return UpdateResult(
            name, namespace, previous, revision, changed, diff, attempt, None, patched
        )
    raise _conflict(
        f"job {target} kept changing while ant updated it ({attempts} attempts); try again"
    )


def _observed_or_same(client: Client, sts: Any, timeout: float) -> Any:
    try:
        return wait_observed(client, sts, timeout)
    except RequestTimeout:
        return sts


def rollback(
    client: Client,
    namespace: str,
    target: str,
    *,
    by: str,
    to_revision: int | None = None,
    at: str | None = None,
    dry_run: bool = False,
    attempts: int = UPDATE_ATTEMPTS,
    observe_timeout: float = OBSERVE_TIMEOUT,
) -> UpdateResult:
    """Restore the pod template of the revision before the update revision (or of
    ``to_revision``), as a strategic merge patch that replaces the template wholesale.

    Retries conflicts from status updates; if the update revision itself changed in the
    meantime (someone updated the job), stops with ``Conflict`` rather than guess.
    """
    from ant.kube.convert import to_dict

    expected = ""
    for attempt in range(1, attempts + 1):
        sts = wait_observed(client, load(client, namespace, target), observe_timeout)
        name, current = sts.metadata.name, sts.status.updateRevision
        if expected and current != expected:
            raise _conflict(
                f"job {name} was updated while rolling back (now revision {current}); "
                f"check 'ant rollout status {target}' and run ant rollback again"
            )
        expected = current
        revisions = list_revisions(client, sts)
        chosen = _choose_revision(name, revisions, current, to_revision)
        if chosen.name == current:
            return UpdateResult(
                name, namespace, current, current, False, "", attempt, chosen, sts, written=False
            )
        before = to_dict(sts.spec.template)
        meta: dict[str, str] = {}
        if not dry_run:
            changes = [f"rollback to revision {chosen.number} ({chosen.name})"]
            meta[schema.LAST_UPDATE] = _record(by, at or utc_now(), changes, current)
        body = {
            "metadata": {"resourceVersion": sts.metadata.resourceVersion, "annotations": meta},
            "spec": {"template": {**chosen.template, "$patch": "replace"}},
        }
        try:
            patched = client.patch(
                r.STATEFULSETS, name, body, namespace, patch_type="strategic", dry_run=dry_run
            )
        except Conflict:
            continue
        diff = template_diff(before, to_dict(patched.spec.template), name)
        revision = ""
        if not dry_run:
            patched = _observed_or_same(client, patched, observe_timeout)
            revision = patched.status.updateRevision if _observed(patched) else ""
        return UpdateResult(
            name, namespace, current, revision, True, diff, attempt, chosen, patched
        )
    raise _conflict(
        f"job {target} kept changing while ant rolled it back ({attempts} attempts); try again"
    )


def _choose_revision(
    name: str, revisions: Sequence[Revision], current: str, to_revision: int | None
) -> Revision:
    if to_revision is not None:
        for rev in revisions:
            if rev.number == to_revision:
                return rev
        have = ", ".join(str(rev.number) for rev in revisions) or "none"
        raise NotFoundError(f"job {name} has no revision {to_revision} (it has {have})")
    numbers = {rev.name: rev.number for rev in revisions}
    if current not in numbers:
        raise NotFoundError(f"the update revision {current} of {name} has no ControllerRevision")
    earlier = [rev for rev in revisions if rev.number < numbers[current]]
    if not earlier:
        raise NotFoundError(
            f"job {name} has no revision before {current}", hint="nothing to roll back to"
        )
    return earlier[-1]


# =============================================================================
# Status
# =============================================================================

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

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "revision": self.number,
            "pods": len(self.indexes),
            "ready": self.ready,
            "replicas": format_indexes(self.indexes),
            "update": self.update,
        }


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

    def to_json(self) -> dict[str, Any]:
        """``ant rollout status -o json`` (docs/rollout.md): stable."""
        return {
            "apiVersion": "ant.dev/v1",
            "kind": "RolloutStatus",
            "name": self.name,
            "namespace": self.namespace,
            "replicas": self.replicas,
            "updateRevision": self.update_revision,
            "currentRevision": self.current_revision,
            "updated": self.updated,
            "state": self.state,
            "message": self.message,
            "paused": bool(self.paused),
            "pausedAt": self.paused_at or None,
            "pausedReason": self.paused or None,
            "rollout": {
                "targetRevision": self.target_revision or None,
                "startedAt": self.started_at or None,
                "finishedAt": self.finished_at or None,
            },
            "revisions": [rev.to_json() for rev in self.revisions],
            "unavailable": [p.to_json() for p in self.unavailable],
            "lastUpdate": dict(self.last_update) if self.last_update else None,
        }


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


# =============================================================================
# The executor
# =============================================================================


@dataclass(frozen=True)
class RolloutProgress:
    """What the executor is doing, for a progress display."""

    phase: Phase
    updated: int  # selected pods Ready on the target revision
    total: int  # selected pods
    batch: int  # current batch number (1-based; 0 before the first)
    batches: int  # batches so far + those planned
    pods: tuple[str, ...]  # the batch's pods, or those waited for


@dataclass(frozen=True)
class RolloutResult:
    job: str
    namespace: str
    target_revision: str
    updated: int
    total: int
    replicas: int
    deleted: tuple[str, ...]
    batches: int
    selected: tuple[int, ...]


ProgressCallback = Callable[[RolloutProgress], None]


def run(
    client: Client,
    sts: Any,
    options: RolloutOptions,
    *,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], str] = utc_now,
) -> RolloutResult:
    """Replace the selected pods not on ``status.updateRevision``, batch by batch.

    Raises ``RolloutPaused`` (and records why on the StatefulSet) when pods do not become
    Ready within ``options.timeout``; nothing further is deleted then.
    """
    return _Executor(client, sts, options, on_progress or (lambda _: None), clock).run()


class _Executor:
    def __init__(
        self,
        client: Client,
        sts: Any,
        options: RolloutOptions,
        on_progress: ProgressCallback,
        clock: Callable[[], str],
    ) -> None:
        self.client = client
        self.options = options
        self.on_progress = on_progress
        self.clock = clock
        strategy = sts.spec.updateStrategy.type or "RollingUpdate"
        if strategy != "OnDelete":
            raise UsageError(
                f"statefulset {sts.metadata.name} uses updateStrategy {strategy}: "
                "its controller replaces the pods itself",
                hint="ant rolls out OnDelete StatefulSets",
            )
        self.sts = wait_observed(client, sts)
        self.name = self.sts.metadata.name
        self.namespace = self.sts.metadata.namespace
        self.target = self.sts.status.updateRevision
        self.failed: dict[str, PodState] = {}  # uid -> pod given up on (--on-failure continue)
        self.deleted: list[str] = []
        self.checked: set[str] = set()  # uids of pods that came back on another revision
        self.batch = 0
        self.tracker = PodTracker(client, self.namespace, pod_selector(self.sts))

    # ---- the loop ------------------------------------------------------------
    def run(self) -> RolloutResult:
        current = self.plan()  # bad --replicas fail here, before anything is written
        if current.complete:
            self._mark_finished_if_needed()
            self.progress("done", current, ())
            return self.result(current)
        self._mark_started()
        while True:
            current = self.plan()
            if current.complete:
                break
            if current.next_batch:
                self._replace(current.next_batch, current)
            else:
                self._wait_for_recovery(current)
        if self.failed:
            pods = list(self.failed.values())
            reason = "finished, but " + describe_pods(pods, "never became Ready")
            self._stop(reason, current)
        self._mark(
            {schema.ROLLOUT_FINISHED_AT: self.clock(), schema.ROLLOUT_PAUSED: None},
        )
        self.progress("done", current, ())
        return self.result(current)

    def plan(self) -> RolloutPlan:
        return plan(
            self.sts, self.tracker.pods.values(), self.options, failed=frozenset(self.failed)
        )

    def result(self, current: RolloutPlan) -> RolloutResult:
        return RolloutResult(
            job=self.name,
            namespace=self.namespace,
            target_revision=self.target,
            updated=current.updated,
            total=len(current.selected),
            replicas=current.replicas,
            deleted=tuple(self.deleted),
            batches=self.batch,
            selected=current.selected,
        )

    def progress(self, phase: Phase, current: RolloutPlan, pods: Sequence[str]) -> None:
        # While deleting, the batch is both counted in self.batch and current.batches[0].
        planned = len(current.batches) - (1 if phase == "deleting" else 0)
        self.on_progress(
            RolloutProgress(
                phase=phase,
                updated=current.updated,
                total=len(current.selected),
                batch=self.batch,
                batches=self.batch + max(0, planned),
                pods=tuple(pods),
            )
        )

    def _live_progress(
        self, phase: Phase, pods: Sequence[str], total_batches: int
    ) -> Callable[[Pods], None]:
        """An on_change for the tracker: cheap counting on every watch event."""
        selected = self._selected_names()

        def on_change(current: Pods) -> None:
            updated = sum(
                1
                for name in selected
                if (p := current.get(name)) is not None
                and p.metadata.labels.get(schema.REVISION_HASH) == self.target
                and is_ready(p)
            )
            self.on_progress(
                RolloutProgress(
                    phase, updated, len(selected), self.batch, total_batches, tuple(pods)
                )
            )

        return on_change

    def _selected_names(self) -> list[str]:
        indexes = (
            self.options.replicas
            if self.options.replicas is not None
            else range(self.sts.spec.replicas)
        )
        return [f"{self.name}-{i}" for i in sorted(indexes)]

    # ---- one batch -----------------------------------------------------------
    def _replace(self, batch: tuple[PodState, ...], current: RolloutPlan) -> None:
        self.batch += 1
        names = [p.name for p in batch]
        total_batches = self.batch + len(current.batches) - 1
        self.progress("deleting", current, names)
        if len(batch) == 1:
            self._delete(batch[0])
        else:  # one request each, concurrently: a batch of 50 is not 50 round trips in a row
            with ThreadPoolExecutor(max_workers=min(DELETE_THREADS, len(batch))) as pool:
                list(pool.map(self._delete, batch))
        self.deleted.extend(names)
        old_uids = {p.name: p.uid for p in batch}
        done = self._wait(
            lambda pods: self._batch_back(pods, old_uids),
            self._live_progress("replacing", names, total_batches),
            f"pods {', '.join(names)} to be Ready on {self.target}",
        )
        if done:
            return
        stuck = [
            s
            for s in self.plan().pods
            if s.name in old_uids and not (s.available and s.revision == self.target)
        ]
        self._give_up(stuck, f"not Ready after {_seconds(self.options.timeout)} on {self.target}")

    def _delete(self, pod: PodState) -> None:
        # The uid precondition: a pod already replaced (by anyone) is left alone.
        with suppress(NotFound, Conflict):
            self.client.delete(r.PODS, pod.name, self.namespace, uid=pod.uid)

    def _batch_back(self, pods: Pods, old_uids: Mapping[str, str]) -> bool:
        back = True
        for name, old_uid in old_uids.items():
            pod = pods.get(name)
            if pod is None or pod.metadata.uid == old_uid:
                back = False
                continue
            revision = pod.metadata.labels.get(schema.REVISION_HASH, "")
            if revision != self.target:
                if pod.metadata.uid not in self.checked:
                    self.checked.add(pod.metadata.uid)
                    self._check_target(name, revision)
                back = False
                continue
            if not is_ready(pod):
                back = False
        return back

    def _check_target(self, pod: str, revision: str) -> None:
        """A pod came back on another revision: the template changed under the rollout."""
        latest = self.client.get(r.STATEFULSETS, self.name, self.namespace)
        if (
            latest.status.updateRevision != self.target
            or latest.metadata.uid != self.sts.metadata.uid
        ):
            raise _conflict(
                f"job {self.name} changed during the rollout: pod {pod} came back on "
                f"{revision}, the update revision is now {latest.status.updateRevision} "
                f"(the rollout was to {self.target})",
            )

    # ---- waiting for the budget --------------------------------------------------
    def _wait_for_recovery(self, current: RolloutPlan) -> None:
        """No batch fits the budget now (or only pods on their way back are left): wait for
        unavailable pods to recover, up to --timeout."""
        names = [p.name for p in current.unavailable]
        self.progress("waiting", current, names)

        def progressed(_: Pods) -> bool:
            latest = self.plan()
            return latest.complete or bool(latest.next_batch)

        total = self.batch + len(current.batches)
        if self._wait(progressed, self._live_progress("waiting", names, total), "the budget"):
            return
        latest = self.plan()
        if latest.blocked:
            self._stop(latest.blocked, latest)
        stuck = [p for p in latest.pods if not p.available and p.uid not in self.failed]
        self._give_up(stuck, f"still unavailable after {_seconds(self.options.timeout)}")

    # ---- failure ---------------------------------------------------------------
    def _give_up(self, stuck: Sequence[PodState], what: str) -> None:
        """--on-failure pause: record why and stop. continue: leave these pods and go on."""
        reason = describe_pods(stuck, what) if stuck else f"no progress {what}"
        if self.options.on_failure == "continue":
            fresh = [p for p in stuck if p.exists and p.uid not in self.failed]
            if fresh:
                self.failed.update((p.uid, p) for p in fresh)
                return
        self._stop(reason, self.plan())

    def _stop(self, reason: str, current: RolloutPlan) -> None:
        self._mark({schema.ROLLOUT_PAUSED: f"{self.clock()} {reason}"})
        raise RolloutPaused(
            f"rollout of {self.name} paused: {reason}",
            hint=f"fix the cause (or 'ant rollback {self.name}'), then run 'ant rollout "
            f"{self.name}' again; nothing more was deleted",
        )

    def _wait(
        self, done: Callable[[Pods], bool], on_change: Callable[[Pods], None], what: str
    ) -> bool:
        """Watch until ``done``; False when --timeout ran out."""
        deadline = time.monotonic() + self.options.timeout
        try:
            self.tracker.wait_until(done, self.options.timeout, on_change=on_change, what=what)
        except RequestTimeout:
            if time.monotonic() < deadline:
                raise  # a request timed out, not the wait
            return False
        return True

    # ---- annotations -------------------------------------------------------------
    def _mark_started(self) -> None:
        annotations = self.sts.metadata.annotations
        resumed = (
            annotations.get(schema.ROLLOUT_TARGET) == self.target
            and schema.ROLLOUT_STARTED_AT in annotations
            and schema.ROLLOUT_FINISHED_AT not in annotations
        )
        self._mark(
            {
                schema.ROLLOUT_TARGET: self.target,
                schema.ROLLOUT_STARTED_AT: annotations[schema.ROLLOUT_STARTED_AT]
                if resumed
                else self.clock(),
                schema.ROLLOUT_FINISHED_AT: None,
                schema.ROLLOUT_PAUSED: None,
            }
        )

    def _mark_finished_if_needed(self) -> None:
        annotations = self.sts.metadata.annotations
        if annotations.get(schema.ROLLOUT_TARGET) == self.target and (
            schema.ROLLOUT_PAUSED in annotations or schema.ROLLOUT_FINISHED_AT not in annotations
        ):
            self._mark({schema.ROLLOUT_FINISHED_AT: self.clock(), schema.ROLLOUT_PAUSED: None})

    def _mark(self, annotations: Mapping[str, str | None]) -> None:
        """A merge patch of ant's own rollout annotations: no resourceVersion needed, it
        touches nothing anyone else writes."""
        self.client.patch(
            r.STATEFULSETS,
            self.name,
            {"metadata": {"annotations": dict(annotations)}},
            self.namespace,
        )


def _seconds(seconds: float) -> str:
    whole = int(seconds)
    if whole >= 60 and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{seconds:g}s"
