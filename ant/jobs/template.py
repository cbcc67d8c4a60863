"""What a job's pods run, read from the pod spec itself (``ant show``).

The StatefulSet's pod template is what every new pod gets (the update revision); each
pod's own spec is what it runs now. Submit-time annotations (``ant.dev/command-line``)
say how the job started, never what it is: after ``ant update`` they are out of date.

Secrets stay secret: an environment variable from a Secret is shown as its reference
(``secretKeyRef wandb/api-key``), never a value; showing a job reads no Secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None  # a literal value from the spec; None when it comes from elsewhere
    value_from: str | None = None  # e.g. "secretKeyRef wandb/api-key", "fieldRef metadata.name"


@dataclass(frozen=True)
class Mount:
    volume: str
    path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[str, ...] = ()  # e.g. "secretRef creds", "configMapRef settings (prefix X_)"
    mounts: tuple[Mount, ...] = ()
    init: bool = False  # an init container (a sidecar when it restarts)


@dataclass(frozen=True)
class Volume:
    name: str
    kind: str  # the VolumeSource field: persistentVolumeClaim, secret, emptyDir, ...
    source: str  # what it names: the claim, the Secret, the path; empty when nothing


@dataclass(frozen=True)
class PodTemplate:
    containers: tuple[Container, ...]
    volumes: tuple[Volume, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)


def describe(pod_spec: Any) -> PodTemplate:
    """A pod spec (protobuf ``core.v1.PodSpec``) as ant shows it."""
    return PodTemplate(
        containers=tuple(
            [_container(c, init=True) for c in pod_spec.initContainers]
            + [_container(c, init=False) for c in pod_spec.containers]
        ),
        volumes=tuple(_volume(v) for v in pod_spec.volumes),
        node_selector=dict(pod_spec.nodeSelector),
    )


def _container(c: Any, *, init: bool) -> Container:
    return Container(
        name=c.name,
        image=c.image,
        command=tuple(c.command),
        args=tuple(c.args),
        requests={k: q.string for k, q in sorted(c.resources.requests.items())},
        limits={k: q.string for k, q in sorted(c.resources.limits.items())},
        env=tuple(_env(e) for e in c.env),
        env_from=tuple(_env_from(e) for e in c.envFrom),
        mounts=tuple(
            Mount(m.name, m.mountPath, m.readOnly, m.subPath or m.subPathExpr)
            for m in c.volumeMounts
        ),
        init=init,
    )


def _env(e: Any) -> EnvVar:
    if not e.HasField("valueFrom"):
        return EnvVar(e.name, e.value)
    source = e.valueFrom
    if source.HasField("secretKeyRef"):
        ref = source.secretKeyRef
        return EnvVar(e.name, None, f"secretKeyRef {ref.localObjectReference.name}/{ref.key}")
    if source.HasField("configMapKeyRef"):
        ref = source.configMapKeyRef
        return EnvVar(e.name, None, f"configMapKeyRef {ref.localObjectReference.name}/{ref.key}")
    if source.HasField("fieldRef"):
        return EnvVar(e.name, None, f"fieldRef {source.fieldRef.fieldPath}")
    if source.HasField("resourceFieldRef"):
        ref = source.resourceFieldRef
        where = f" of {ref.containerName}" if ref.containerName else ""
        return EnvVar(e.name, None, f"resourceFieldRef {ref.resource}{where}")
    if source.HasField("fileKeyRef"):
        ref = source.fileKeyRef
        return EnvVar(e.name, None, f"fileKeyRef {ref.volumeName}:{ref.path}/{ref.key}")
    return EnvVar(e.name, None, "valueFrom")


def _env_from(e: Any) -> str:
    prefix = f" (prefix {e.prefix})" if e.prefix else ""
    if e.HasField("secretRef"):
        return f"secretRef {e.secretRef.localObjectReference.name}{prefix}"
    if e.HasField("configMapRef"):
        return f"configMapRef {e.configMapRef.localObjectReference.name}{prefix}"
    return f"envFrom{prefix}"


# What each kind of volume names, when it names one thing (the rest show their kind only).
_VOLUME_SOURCES: dict[str, Callable[[Any], str]] = {
    "persistentVolumeClaim": lambda s: s.claimName + (" (read-only)" if s.readOnly else ""),
    "secret": lambda s: s.secretName,
    "configMap": lambda s: s.localObjectReference.name,
    "hostPath": lambda s: s.path,
    "nfs": lambda s: f"{s.server}:{s.path}",
    "csi": lambda s: s.driver,
    "image": lambda s: s.reference,
    "emptyDir": lambda s: f"medium {s.medium}" if s.medium else "",
}


def _volume(v: Any) -> Volume:
    source = v.volumeSource
    kind = _set_field(source)
    if kind is None:
        return Volume(v.name, "", "")
    describe_source = _VOLUME_SOURCES.get(kind)
    text = describe_source(getattr(source, kind)) if describe_source else ""
    return Volume(v.name, kind, text)


def _set_field(message: Any) -> str | None:
    """The name of the one field set on a VolumeSource (proto2: no oneof to ask)."""
    for descriptor, _ in message.ListFields():
        return str(descriptor.name)
    return None
