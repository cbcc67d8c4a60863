"""Template changes (``ant update``) and ``ant rollback``.

Both use optimistic concurrency: the patch names the resourceVersion it was computed
from; on a 409 the user's *change* is applied again to a fresh read, so a concurrent edit
by someone else is kept, never overwritten. They share one tail (``_write``): send the
patch, record it in ``ant.dev/last-update``, wait for the controller's new revision.
"""

from __future__ import annotations

import copy
import difflib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ant.errors import (
    Conflict,
    JobChanged,
    NotFoundError,
    RequestTimeout,
    UsageError,
    ValidationError,
)
from ant.jobs import schema
from ant.jobs.manifest import CONTAINER, deep_merge
from ant.jobs.rollout.revisions import (
    OBSERVE_TIMEOUT,
    Revision,
    list_revisions,
    load,
    observed,
    utc_now,
    wait_observed,
)
from ant.jobs.spec import validate_env_names, validate_image
from ant.kube import resources as r
from ant.kube.client import Client, PatchType

UPDATE_ATTEMPTS = 5


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

    def validate(self) -> None:
        """The rules a change breaks before anything is sent (those of ``ant submit``)."""
        for key in self.meta:
            schema.validate_meta_key(key, "--meta")
        if self.image is not None:
            validate_image(self.image, "--image")
        validate_env_names(self.env, "--env")
        validate_env_names(self.unset_env, "--unset-env")

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

    change.validate()
    if change.empty:
        raise UsageError("nothing to update", hint="give --image, --env, -f FILE, -- COMMAND ...")
    for attempt in range(1, attempts + 1):
        sts = wait_observed(client, load(client, namespace, target), observe_timeout)
        before = to_dict(sts.spec.template)
        after = apply_change(before, change)
        template_patch = merge_patch(before, after)
        annotations = sts.metadata.annotations
        meta = {
            schema.META_PREFIX + k: v
            for k, v in change.meta.items()
            if annotations.get(schema.META_PREFIX + k) != v
        }
        if not template_patch and not meta:
            return _unchanged(sts, attempt)
        if template_patch:
            _check_template(after)
        written = _write(
            client,
            sts,
            Write(by, at, dry_run, observe_timeout),
            template=template_patch or None,
            meta=meta,
            record=change.describe(),
            patch_type="merge",
            attempt=attempt,
        )
        if written:
            return written
        # Someone else wrote first: the loop applies the change again to what they wrote.
    raise JobChanged(
        f"job {target} kept changing while ant updated it ({attempts} attempts); try again"
    )


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
    expected = ""
    for attempt in range(1, attempts + 1):
        sts = wait_observed(client, load(client, namespace, target), observe_timeout)
        name, current = sts.metadata.name, sts.status.updateRevision
        if expected and current != expected:
            raise JobChanged(
                f"job {name} was updated while rolling back (now revision {current}); "
                f"check 'ant rollout status {target}' and run ant rollback again"
            )
        expected = current
        chosen = _choose_revision(name, list_revisions(client, sts), current, to_revision)
        if chosen.name == current:
            return _unchanged(sts, attempt, chosen)
        written = _write(
            client,
            sts,
            Write(by, at, dry_run, observe_timeout),
            template={**chosen.template, "$patch": "replace"},
            meta={},
            record=[f"rollback to revision {chosen.number} ({chosen.name})"],
            patch_type="strategic",
            attempt=attempt,
            restored=chosen,
        )
        if written:
            return written
    raise JobChanged(
        f"job {target} kept changing while ant rolled it back ({attempts} attempts); try again"
    )


def _unchanged(sts: Any, attempt: int, restored: Revision | None = None) -> UpdateResult:
    name, revision = sts.metadata.name, sts.status.updateRevision
    return UpdateResult(
        name,
        sts.metadata.namespace,
        revision,
        revision,
        False,
        "",
        attempt,
        restored,
        sts,
        written=False,
    )


@dataclass(frozen=True)
class Write:
    """Who writes a template change, and how (the same for every attempt)."""

    by: str
    at: str | None
    dry_run: bool
    observe_timeout: float


def _write(
    client: Client,
    sts: Any,
    how: Write,
    *,
    template: Mapping[str, Any] | None,
    meta: Mapping[str, str],
    record: Sequence[str],
    patch_type: PatchType,
    attempt: int,
    restored: Revision | None = None,
) -> UpdateResult | None:
    """The tail update and rollback share: one patch of ``spec.template`` (None: leave it)
    and annotations, recorded in ``ant.dev/last-update`` (not on a dry run) and carrying the
    resourceVersion ``sts`` was read at; then wait for the controller's new revision.
    None on a conflict: the caller reads again and retries."""
    from ant.kube.convert import to_dict

    name, namespace = sts.metadata.name, sts.metadata.namespace
    previous = sts.status.updateRevision
    annotations = dict(meta)
    if not how.dry_run:
        annotations[schema.LAST_UPDATE] = _record(how.by, how.at or utc_now(), record, previous)
    schema.validate_annotations_size({**sts.metadata.annotations, **annotations})
    body: dict[str, Any] = {
        "metadata": {"resourceVersion": sts.metadata.resourceVersion, "annotations": annotations}
    }
    if template is not None:
        body["spec"] = {"template": template}
    try:
        patched = client.patch(
            r.STATEFULSETS, name, body, namespace, patch_type=patch_type, dry_run=how.dry_run
        )
    except Conflict:
        return None
    diff = template_diff(to_dict(sts.spec.template), to_dict(patched.spec.template), name)
    revision = ""
    if not how.dry_run:
        patched = _observed_or_same(client, patched, how.observe_timeout)
        revision = patched.status.updateRevision if observed(patched) else ""
    changed = template is not None
    return UpdateResult(
        name, namespace, previous, revision, changed, diff, attempt, restored, patched
    )


def _observed_or_same(client: Client, sts: Any, timeout: float) -> Any:
    try:
        return wait_observed(client, sts, timeout)
    except RequestTimeout:
        return sts


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
