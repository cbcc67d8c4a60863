"""The Kubernetes objects of a job: a headless Service and a StatefulSet of the same name.

Built as Kubernetes-JSON dicts (what ``--dry-run`` prints and what a user's
``podTemplate`` merges into), converted to protobuf only to go on the wire.
"""

from __future__ import annotations

import secrets
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ant.jobs import data, schema
from ant.jobs import gang as gangs
from ant.jobs.identity import Identity
from ant.jobs.spec import GPU_RESOURCE, TPU_RESOURCE, JobSpec

CONTAINER = "main"


@dataclass(frozen=True)
class GitInfo:
    commit: str
    dirty: bool
    repo: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where and when a job was submitted, recorded in its annotations."""

    identity: Identity
    submitted_at: str
    command_line: str
    git: GitInfo | None = None
    placement: str = ""  # `ant submit --clusters`: "CLUSTER: why" (ant.jobs.placement)


@dataclass(frozen=True)
class Manifests:
    name: str
    namespace: str
    service: dict[str, Any]
    statefulset: dict[str, Any]
    podgroup: dict[str, Any] | None = None  # a PodGroup gang's group (ant.jobs.gang)

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Every object of the job, as ``--dry-run`` prints them."""
        return [self.service, self.statefulset, *([self.podgroup] if self.podgroup else [])]


def job_name(spec: JobSpec) -> str:
    """The job's name; for ``--generate-name`` picked here, so Service and StatefulSet share it."""
    if spec.name:
        return spec.name
    alphabet = string.ascii_lowercase + string.digits
    return spec.generate_name + "".join(
        secrets.choice(alphabet) for _ in range(schema.GENERATED_SUFFIX)
    )


def git_info(cwd: str) -> GitInfo | None:
    """The commit and dirty state of the directory ant was run in, if it is a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit=commit, dirty=bool(status), repo=git("remote", "get-url", "origin") or "")


def build(
    spec: JobSpec,
    name: str,
    namespace: str,
    provenance: Provenance,
    gang: gangs.Gang | None = None,
) -> Manifests:
    """The job's objects; ``gang``: the engine that admits it whole (ant.jobs.gang)."""
    labels = {
        **schema.job_labels(name, provenance.identity.label, spec.priority),
        **spec.labels,
    }
    selector = {schema.JOB: name, schema.MANAGED_BY: schema.MANAGED_BY_VALUE}
    annotations = _annotations(spec, provenance)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                schema.CREATED_BY_FULL: provenance.identity.username,
                schema.SCHEMA: schema.SCHEMA_VERSION,
            },
        },
        # Headless, and resolvable before Ready: replicas find each other at start-up.
        "spec": {"clusterIP": "None", "selector": selector, "publishNotReadyAddresses": True},
    }
    template = deep_merge(
        {"metadata": {"labels": labels}, "spec": _pod_spec(spec, name, namespace)},
        spec.pod_template,
    )
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "replicas": spec.replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }
    schema.validate_annotations_size(annotations)
    if gang is None:
        return Manifests(name, namespace, service, statefulset)
    gangs.apply(gang, statefulset, spec.priority)
    podgroup = gangs.podgroup(gang, statefulset, spec.priority)
    return Manifests(
        name,
        namespace,
        service,
        statefulset,
        podgroup if gang.engine is gangs.Engine.PODGROUP else None,
    )


def _annotations(spec: JobSpec, provenance: Provenance) -> dict[str, str]:
    annotations = {
        schema.CREATED_BY_FULL: provenance.identity.username,
        schema.SUBMITTED_AT: provenance.submitted_at,
        schema.COMMAND_LINE: provenance.command_line,
        schema.SCHEMA: schema.SCHEMA_VERSION,
    }
    if spec.description:
        annotations[schema.DESCRIPTION] = spec.description
    if provenance.placement:
        annotations[schema.PLACEMENT] = provenance.placement
    if provenance.git:
        annotations[schema.GIT_COMMIT] = provenance.git.commit
        annotations[schema.GIT_DIRTY] = "true" if provenance.git.dirty else "false"
        if provenance.git.repo:
            annotations[schema.GIT_REPO] = provenance.git.repo
    annotations.update({schema.META_PREFIX + k: v for k, v in spec.meta.items()})
    annotations[schema.MAX_RESTARTS] = str(spec.max_restarts)
    annotations[schema.ON_FAILURE] = spec.on_failure
    annotations[schema.TTL] = str(spec.ttl_seconds)
    if spec.after:
        annotations[schema.AFTER] = ",".join(spec.after)
    return annotations


def _pod_spec(spec: JobSpec, name: str, namespace: str) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "ANT_JOB", "value": name},
        {
            "name": "ANT_REPLICA",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{schema.POD_INDEX}']"}},
        },
        {"name": "ANT_REPLICAS", "value": str(spec.replicas)},
        {"name": "ANT_LEADER", "value": f"{name}-0.{name}.{namespace}.svc"},
        *({"name": k, "value": v} for k, v in spec.env.items()),
        *data.env_entries(spec.secret_env),
    ]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "env": env,
        # KEP-5307: a replica that exits 0 has finished and is not started again; a failure
        # is restarted in place and stays visible (restartCount, lastState) until the
        # controller acts on it (docs/controller.md).
        "restartPolicy": "OnFailure",
    }
    volumes, volume_mounts = data.volumes(spec.mounts)
    if volume_mounts:
        container["volumeMounts"] = volume_mounts
    if spec.command:
        container["command"] = list(spec.command)
    if spec.resources:
        container["resources"] = {
            "requests": dict(spec.resources),
            # cpu is left unlimited (limits throttle); the rest is reserved exactly.
            "limits": {k: v for k, v in spec.resources.items() if k != "cpu"},
        }
    pod: dict[str, Any] = {
        "containers": [container],
        "priorityClassName": schema.priority_class(spec.priority),
        # One env var per Service in the namespace is noise for a training job.
        "enableServiceLinks": False,
    }
    if volumes:
        pod["volumes"] = volumes
    if spec.after:  # held until every --after job succeeded: the controller removes the gate
        pod["schedulingGates"] = [{"name": schema.AFTER_GATE}]
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [dict(t) for t in spec.tolerations]
    return pod


def accelerator_resources(tpus: int | None, gpus: int | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if tpus is not None:
        out[TPU_RESOURCE] = str(tpus)
    if gpus is not None:
        out[GPU_RESOURCE] = str(gpus)
    return out


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``: maps merge, lists of named items merge by name, else replace."""
    merged = dict(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        elif isinstance(current, list) and _named_list(current) and _named_list(value):
            by_name = {item["name"]: item for item in current}
            for item in value:
                by_name[item["name"]] = deep_merge(by_name.get(item["name"], {}), item)
            merged[key] = list(by_name.values())
        else:
            merged[key] = value
    return merged


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, Mapping) and "name" in i for i in value)
