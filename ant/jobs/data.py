"""A job's data, secrets and environment: env files, Secret env vars and mounts.

One grammar per kind of reference, the same for flags and the job spec file
(docs/cli.md#data-secrets-and-environment)::

    --secret-env NAME=SECRET:KEY     secretEnv:    [NAME=SECRET:KEY]
    --secret-mount SECRET:/path      secretMounts: [SECRET:/path]
    --mount PVC:/path[:ro|:rw]       mounts:       [PVC:/path:ro]
    --config-map NAME:/path          configMaps:   [NAME:/path]

Every referenced object is looked up at submit time (``check_references``): a missing
Secret, PVC or ConfigMap is an error naming it, not a pod stuck in ContainerCreating.
Values of Secrets are read only to check that a key exists; never returned or shown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ant.errors import Forbidden, NotFound, NotFoundError, UsageError, ValidationError
from ant.jobs import schema

Kind = Literal["secret", "pvc", "configmap"]

ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_KIND_WORDS: dict[Kind, str] = {
    "secret": "Secret",
    "pvc": "PersistentVolumeClaim",
    "configmap": "ConfigMap",
}


@dataclass(frozen=True)
class SecretEnv:
    """Environment variable ``name`` from key ``key`` of Secret ``secret``."""

    name: str
    secret: str
    key: str

    def __str__(self) -> str:
        return f"{self.name}={self.secret}:{self.key}"


@dataclass(frozen=True)
class Mount:
    """A Secret, PVC or ConfigMap mounted at ``path`` (Secrets and ConfigMaps read-only)."""

    kind: Kind
    source: str
    path: str
    read_only: bool = True

    def __str__(self) -> str:
        suffix = "" if self.kind != "pvc" else (":ro" if self.read_only else "")
        return f"{self.source}:{self.path}{suffix}"

    @property
    def volume(self) -> str:
        """The pod volume's name: a DNS label, unique per kind and source."""
        name = f"{self.kind}-{self.source}"
        if len(name) <= schema.MAX_DNS_LABEL and "." not in name:
            return name
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:10]
        return f"{self.kind}-{self.source[:40].replace('.', '-').rstrip('-')}-{digest}"


# ---- the grammars ----------------------------------------------------------------
def parse_secret_env(text: str, where: str) -> SecretEnv:
    """``NAME=SECRET:KEY``."""
    name, eq, ref = text.partition("=")
    secret, colon, key = ref.partition(":")
    if not (eq and colon and name and secret and key):
        raise ValidationError(
            where, f"{text!r} is not NAME=SECRET:KEY", hint="e.g. WANDB_API_KEY=wandb:api-key"
        )
    check_env_name(name, where)
    schema.validate_object_name(secret, f"{where} {text}")
    if len(key) > 253 or not _SECRET_KEY.fullmatch(key):
        raise ValidationError(
            f"{where} {text}", f"{key!r} is not a valid Secret key", hint="A-Z a-z 0-9 - _ ."
        )
    return SecretEnv(name, secret, key)


def parse_mount(kind: Kind, text: str, where: str) -> Mount:
    """``SOURCE:/path``, and for a PVC an optional ``:ro`` or ``:rw`` (default rw)."""
    source, colon, path = text.partition(":")
    read_only = kind != "pvc"
    if kind == "pvc" and path.endswith((":ro", ":rw")):
        path, mode = path[:-3], path[-2:]
        read_only = mode == "ro"
    form = "PVC:/path[:ro]" if kind == "pvc" else f"{_KIND_WORDS[kind].upper()}:/path"
    if not (colon and source and path):
        raise ValidationError(where, f"{text!r} is not {form}", hint=f"e.g. {_example(kind)}")
    schema.validate_object_name(source, f"{where} {text}")
    if not path.startswith("/") or path == "/" or ":" in path:
        raise ValidationError(
            f"{where} {text}",
            f"{path!r} is not an absolute path inside the container",
            hint=f"e.g. {_example(kind)}",
        )
    return Mount(kind, source, path.rstrip("/") or "/", read_only)


def _example(kind: Kind) -> str:
    return {
        "secret": "gcs-key:/var/secrets/gcs",
        "pvc": "datasets:/data:ro",
        "configmap": "train-config:/etc/train",
    }[kind]


def check_env_name(name: str, where: str) -> None:
    if not ENV_NAME.fullmatch(name):
        raise ValidationError(f"{where} {name}", "not a valid environment variable name")
    if name.startswith("ANT_"):
        raise ValidationError(f"{where} {name}", "ANT_* variables are set by ant")


def parse_env_file(
    path: str, environ: Mapping[str, str], where: str = "--env-file"
) -> dict[str, str]:
    """A ``KEY=VALUE`` file, by kubectl's ``--from-env-file`` rules.

    One variable per line; leading whitespace is dropped; blank lines and lines starting
    with ``#`` are skipped; the value is everything after the first ``=``, verbatim (no
    quotes removed, no ``$`` expanded, trailing spaces kept); a line with a bare ``KEY``
    takes the value ant itself was started with (empty if unset). UTF-8; a leading BOM
    is dropped. Later lines win over earlier ones. ``where`` names the file's origin in
    errors (the flag, or the spec file's ``envFile`` key).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"{where}: cannot read {path}: {e.strerror}") from e
    values: dict[str, str] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode().removesuffix("\r")
        except UnicodeDecodeError as e:
            raise ValidationError(f"{where} {path}:{number}", "is not UTF-8") from e
        if number == 1:
            line = line.removeprefix("\ufeff")
        line = line.lstrip(" \t\v\f")
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        line_where = f"{where} {path}:{number}"
        if key.startswith(("export ", "export\t")):
            raise ValidationError(
                line_where,
                f"{key!r} is not a variable name",
                hint="the format is KEY=VALUE without 'export' (kubectl's --from-env-file)",
            )
        if not ENV_NAME.fullmatch(key):
            raise ValidationError(line_where, f"{key!r} is not a valid environment variable name")
        values[key] = value if eq else environ.get(key, "")
    return values


def parse_all(
    secret_env: Iterable[str] = (),
    secret_mounts: Iterable[str] = (),
    mounts: Iterable[str] = (),
    config_maps: Iterable[str] = (),
    *,
    source: str = "",
) -> dict[str, Any]:
    """Every reference, parsed: the JobSpec fields they fill (``source`` prefixes errors,
    the flag names otherwise)."""

    def where(flag: str, key: str) -> str:
        return f"{source}: {key}" if source else flag

    return {
        "secret_env": tuple(
            parse_secret_env(t, where("--secret-env", "secretEnv")) for t in secret_env
        ),
        "mounts": (
            *(
                parse_mount("secret", t, where("--secret-mount", "secretMounts"))
                for t in secret_mounts
            ),
            *(parse_mount("pvc", t, where("--mount", "mounts")) for t in mounts),
            *(
                parse_mount("configmap", t, where("--config-map", "configMaps"))
                for t in config_maps
            ),
        ),
    }


# ---- rules across references -------------------------------------------------------
def validate(
    env: Mapping[str, str], secret_env: Sequence[SecretEnv], mounts: Sequence[Mount]
) -> None:
    seen: dict[str, str] = {}
    for item in secret_env:
        if item.name in env or item.name in seen:
            raise ValidationError(
                f"--secret-env {item}",
                f"{item.name} is set twice",
                hint="give each environment variable one value (--env, --env-file or --secret-env)",
            )
        seen[item.name] = str(item)
    paths: dict[str, Mount] = {}
    for mount in mounts:
        if mount.path in paths:
            raise ValidationError(
                f"mount {mount}",
                f"{mount.path} is already the mount point of {paths[mount.path]}",
                hint="mount each at its own path",
            )
        paths[mount.path] = mount


# ---- the pod spec --------------------------------------------------------------------
def env_entries(secret_env: Sequence[SecretEnv]) -> list[dict[str, Any]]:
    return [
        {"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.secret, "key": e.key}}}
        for e in secret_env
    ]


def volumes(mounts: Sequence[Mount]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes (one per source) and the container's volumeMounts (one per mount)."""
    by_name: dict[str, dict[str, Any]] = {}
    volume_mounts: list[dict[str, Any]] = []
    for m in mounts:
        if m.kind == "secret":
            source: dict[str, Any] = {"secret": {"secretName": m.source}}
        elif m.kind == "configmap":
            source = {"configMap": {"name": m.source}}
        else:
            source = {"persistentVolumeClaim": {"claimName": m.source}}
        by_name.setdefault(m.volume, {"name": m.volume, **source})
        mount: dict[str, Any] = {"name": m.volume, "mountPath": m.path}
        if m.read_only:
            mount["readOnly"] = True
        volume_mounts.append(mount)
    return list(by_name.values()), volume_mounts


# ---- checked against the cluster ------------------------------------------------------
_KEY_REFS: tuple[tuple[Kind, str], ...] = (
    ("secret", "secretKeyRef"),
    ("configmap", "configMapKeyRef"),
)
_ENV_FROM_REFS: tuple[tuple[Kind, str], ...] = (
    ("secret", "secretRef"),
    ("configmap", "configMapRef"),
)


def references(pod_spec: Mapping[str, Any]) -> dict[tuple[Kind, str], list[str]]:
    """Every Secret, PVC and ConfigMap a pod spec needs (not ``optional``), with the Secret
    keys its env reads: from ant's flags and spec keys and from the user's podTemplate."""
    wanted: dict[tuple[Kind, str], list[str]] = {}
    for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        for env in container.get("env", []):
            source = env.get("valueFrom", {})
            for kind, ref_key in _KEY_REFS:
                ref = source.get(ref_key)
                if ref and not ref.get("optional"):
                    wanted.setdefault((kind, ref["name"]), []).append(ref["key"])
        for env_from in container.get("envFrom", []):
            for kind, ref_key in _ENV_FROM_REFS:
                ref = env_from.get(ref_key)
                if ref and not ref.get("optional"):
                    wanted.setdefault((kind, ref["name"]), [])
    for volume in pod_spec.get("volumes", []):
        if (s := volume.get("secret")) and not s.get("optional"):
            wanted.setdefault(("secret", s["secretName"]), [])
        elif (c := volume.get("configMap")) and not c.get("optional"):
            wanted.setdefault(("configmap", c["name"]), [])
        elif p := volume.get("persistentVolumeClaim"):
            wanted.setdefault(("pvc", p["claimName"]), [])
    return wanted


def check_references(client: Any, namespace: str, pod_spec: Mapping[str, Any]) -> list[str]:
    """GET every object the pod spec needs; raise ``NotFoundError`` naming the first one
    missing (or a key missing from it). Returns what could not be checked (access denied),
    e.g. ``["Secret wandb"]``: the pods will tell if those are missing."""
    from ant.kube import resources as r

    resource = {"secret": r.SECRETS, "pvc": r.PERSISTENT_VOLUME_CLAIMS, "configmap": r.CONFIG_MAPS}
    unchecked: list[str] = []
    for (kind, name), keys in references(pod_spec).items():
        what = _KIND_WORDS[kind]
        try:
            obj = client.get(resource[kind], name, namespace)
        except NotFound as e:
            raise NotFoundError(
                f"{what} {name} not found in namespace {namespace}",
                hint="create it first, or correct the name",
            ) from e
        except Forbidden:
            unchecked.append(f"{what} {name}")
            continue
        if not keys:
            continue
        present = set(obj.data) | set(getattr(obj, "binaryData", ()))  # names only
        if missing := [k for k in keys if k not in present]:
            raise NotFoundError(
                f"{what} {name} in namespace {namespace} has no key {missing[0]}",
                hint=f"its keys: {', '.join(sorted(present)) or '(none)'}",
            )
    return unchecked
