"""A job spec: what the user asks for, from a small YAML file of ant's own and flags.

File format (docs/cli.md#job-spec-files); every key optional, flags win::

    name: bert-pretrain          # or generateName: bert-
    image: ghcr.io/lab/train:1.4
    command: [python, train.py]  # or a string, run by /bin/sh -c
    replicas: 16
    resources: {google.com/tpu: 4, cpu: "8", memory: 64Gi}
    env: {WANDB_PROJECT: bert}
    envFile: [common.env]        # KEY=VALUE files, relative to this file; env: wins
    priority: opportunistic      # opportunistic | normal | high
    labels: {team: nlp}
    meta: {dataset: c4-en}
    description: BERT-large, seq 512
    nodeSelector: {cloud.google.com/gke-tpu-topology: 2x2x2}
    tolerations: [{key: google.com/tpu, operator: Exists, effect: NoSchedule}]
    secretEnv: [WANDB_API_KEY=wandb:api-key]      # NAME=SECRET:KEY
    secretMounts: [gcs-key:/var/secrets/gcs]      # SECRET:/path (read-only)
    mounts: [datasets:/data:ro, scratch:/scratch] # PVC:/path[:ro|:rw]
    configMaps: [train-config:/etc/train]         # CONFIGMAP:/path (read-only)
    podTemplate: {spec: {volumes: [...]}}   # merged over what ant generates
    maxRestarts: 3               # restarts a failure may cause before the job fails
    onFailure: restart-job       # restart-job | restart-replica | fail
    after: [prep, tokenize]      # jobs that must succeed before this one starts
    ttl: 7d                      # kept this long after it finished

The references' grammar, checks and pod-spec pieces live in ``ant.jobs.data``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ant.errors import UsageError, ValidationError
from ant.jobs import data, schema
from ant.jobs.durations import parse_duration
from ant.kube.quantity import parse_quantity

MAX_REPLICAS = 2**31 - 1  # a StatefulSet's replicas is an int32
TPU_RESOURCE = "google.com/tpu"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class JobSpec:
    name: str = ""
    generate_name: str = ""
    image: str = ""
    command: tuple[str, ...] = ()
    replicas: int = 1
    resources: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    priority: str = schema.DEFAULT_PRIORITY
    labels: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    pod_template: Mapping[str, Any] = field(default_factory=dict)
    secret_env: tuple[data.SecretEnv, ...] = ()
    mounts: tuple[data.Mount, ...] = ()
    max_restarts: int = schema.DEFAULT_MAX_RESTARTS
    on_failure: str = schema.DEFAULT_ON_FAILURE
    after: tuple[str, ...] = ()
    ttl_seconds: int = schema.DEFAULT_TTL_SECONDS

    def with_overrides(self, **overrides: Any) -> JobSpec:
        """Flags over the file: ``None`` means "not given"; maps merge key by key;
        references (secret env, mounts) add to the file's."""
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            current = getattr(self, key)
            if isinstance(current, Mapping):
                changes[key] = {**current, **value}
            elif key in _ADDED:
                changes[key] = (*current, *value)
            else:
                changes[key] = value
        return replace(self, **changes)


_ADDED = ("secret_env", "mounts")


# File keys (camelCase, like Kubernetes) -> JobSpec fields.
FILE_KEYS = {
    "name": "name",
    "generateName": "generate_name",
    "image": "image",
    "command": "command",
    "replicas": "replicas",
    "resources": "resources",
    "env": "env",
    "envFile": "env",
    "priority": "priority",
    "labels": "labels",
    "meta": "meta",
    "description": "description",
    "nodeSelector": "node_selector",
    "tolerations": "tolerations",
    "podTemplate": "pod_template",
    "secretEnv": "secret_env",
    "secretMounts": "mounts",
    "mounts": "mounts",
    "configMaps": "mounts",
    "maxRestarts": "max_restarts",
    "onFailure": "on_failure",
    "after": "after",
    "ttl": "ttl_seconds",
}
# File keys that are lists of references, in ant.jobs.data's grammar -> parse_all's argument.
_REFERENCE_KEYS = {
    "secretEnv": "secret_env",
    "secretMounts": "secret_mounts",
    "mounts": "mounts",
    "configMaps": "config_maps",
}


# Deeper than any pod template needs; deep enough documents exhaust Python's stack.
MAX_YAML_DEPTH = 64


def read_yaml(path: str, what: str) -> Any:
    """A user's YAML file, strictly: UTF-8 text, no key given twice in a mapping, nested at
    most ``MAX_YAML_DEPTH`` deep. Every problem is a ``UsageError`` naming the file (and
    the line); ``what`` says what the file is ("job spec").
    """
    import yaml

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror}") from e
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UsageError(
            f"{what} {path} is not UTF-8 text: byte 0x{data[e.start]:02x} at line {line}",
            hint="save it as UTF-8",
        ) from e
    try:
        doc = yaml.load(text, Loader=_strict_loader())
    except _DuplicateKey as e:
        raise ValidationError(
            f"{path}: {e.key}",
            f"given twice (lines {e.first} and {e.second})",
            hint="keep one; YAML would silently take the last",
        ) from e
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(
            f"{what} {path} is not valid YAML{where}" + (f": {problem}" if problem else "")
        ) from e
    except RecursionError as e:
        raise UsageError(f"{what} {path} is nested too deeply") from e
    if _depth(doc) > MAX_YAML_DEPTH:
        raise UsageError(f"{what} {path} is nested more than {MAX_YAML_DEPTH} levels deep")
    return doc


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


_LOADER: list[Any] = []


def _strict_loader() -> Any:
    """PyYAML's safe loader (the C one when built), refusing a key given twice."""
    if _LOADER:
        return _LOADER[0]
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                if isinstance(key, str | int | float | bool):
                    seen[key] = line
            return super().construct_mapping(node, deep)

    _LOADER.append(StrictLoader)
    return StrictLoader


def _depth(doc: Any) -> int:
    """How deeply ``doc`` nests mappings and lists (iteratively: no stack to exhaust)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if level + 1 > MAX_YAML_DEPTH:
                    return level + 1
                stack.append((child, level + 1))
        deepest = max(deepest, level)
    return deepest


def load_file(
    path: str, defaults: JobSpec | None = None, environ: Mapping[str, str] | None = None
) -> JobSpec:
    """The job spec file; keys it does not give come from ``defaults`` (the user's config).
    ``environ`` fills an ``envFile`` line that names a variable without a value."""
    doc = read_yaml(path, "job spec")
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ValidationError(path, "a job spec is a mapping of fields (name, image, ...)")
    return from_mapping(doc, path, defaults, environ or {})


def from_mapping(
    doc: Mapping[str, Any],
    source: str,
    defaults: JobSpec | None = None,
    environ: Mapping[str, str] | None = None,
) -> JobSpec:
    """``doc`` read from the file ``source`` (``envFile`` paths are relative to it)."""
    values: dict[str, Any] = {}
    references: dict[str, list[str]] = {}
    env_files: dict[str, str] = {}
    for key, value in doc.items():
        if key not in FILE_KEYS:
            close = difflib.get_close_matches(str(key), FILE_KEYS, n=1)
            raise ValidationError(
                f"{source}: {key}",
                "unknown field",
                hint=f"did you mean {close[0]}?" if close else f"known: {', '.join(FILE_KEYS)}",
            )
        if key in _REFERENCE_KEYS:
            references[_REFERENCE_KEYS[key]] = _strings(value, f"{source}: {key}")
        elif key == "envFile":
            env_files = _env_files(value, source, environ or {})
        else:
            values[FILE_KEYS[key]] = _coerce(FILE_KEYS[key], value, f"{source}: {key}")
    if env_files:  # the files first, then env: over them (as docker compose does)
        values["env"] = {**env_files, **values.get("env", {})}
    return replace(defaults or JobSpec(), **values, **data.parse_all(**references, source=source))


def _env_files(value: Any, source: str, environ: Mapping[str, str]) -> dict[str, str]:
    where = f"{source}: envFile"
    paths = [value] if isinstance(value, str) else _strings(value, where)
    folder = Path(source).parent
    return {
        k: v
        for path in paths
        for k, v in data.parse_env_file(str(folder / path), environ, where).items()
    }


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ValidationError(where, "expected a list of strings")
    return [_string(v, where) for v in value]


def _coerce(name: str, value: Any, where: str) -> Any:
    if name in ("name", "generate_name", "image", "priority", "description", "on_failure"):
        return _string(value, where)
    if name == "ttl_seconds":
        return parse_duration(_string(value, where), where)
    if name == "after":
        if isinstance(value, str):
            return parse_after(value, where)
        if isinstance(value, list):
            return tuple(_string(v, where) for v in value)
        raise ValidationError(where, "a list of job names (or one comma-separated string)")
    if name in ("replicas", "max_restarts"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(where, f"{value!r} is not a whole number")
        return value
    if name == "command":
        if isinstance(value, str):
            return ("/bin/sh", "-c", value)
        if isinstance(value, list) and value:
            return tuple(_string(v, where) for v in value)
        raise ValidationError(where, "a command is a string or a non-empty list of strings")
    if name in ("resources", "env", "labels", "meta", "node_selector"):
        if not isinstance(value, dict):
            raise ValidationError(where, "expected a mapping of key: value")
        return {str(k): _string(v, f"{where}.{k}", numbers=True) for k, v in value.items()}
    if name == "tolerations":
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise ValidationError(where, "expected a list of tolerations")
        return tuple(value)
    if not isinstance(value, dict):  # pod_template
        raise ValidationError(where, "expected a pod template mapping (metadata, spec)")
    return value


def _string(value: Any, where: str, *, numbers: bool = False) -> str:
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(where, f"{value!r} is not a string")


def parse_pairs(values: Iterable[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` flags into a dict (the value may contain '=')."""
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(flag, f"{item!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


def parse_after(text: str, flag: str = "after") -> tuple[str, ...]:
    """``a,b`` -> ("a", "b"): the jobs an ``--after`` job waits for."""
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise ValidationError(flag, f"{text!r} has an empty job name", hint="e.g. --after prep,tok")
    return names


def validate(spec: JobSpec) -> None:
    """Every rule a job must pass before ant touches the cluster."""
    if spec.generate_name and not spec.name:
        schema.validate_name_prefix(spec.generate_name)
    else:
        schema.validate_job_name(spec.name)
    if not spec.image:
        raise ValidationError("image", "a job needs an image", hint="pass --image or set image:")
    validate_image(spec.image)
    if spec.replicas < 1:
        raise ValidationError("replicas", f"{spec.replicas} is not a positive number of replicas")
    if spec.replicas > MAX_REPLICAS:
        raise ValidationError("replicas", f"{spec.replicas} is more than {MAX_REPLICAS}")
    schema.validate_priority(spec.priority)
    schema.validate_on_failure(spec.on_failure)
    if spec.max_restarts < 0:
        raise ValidationError("max-restarts", f"{spec.max_restarts} is negative")
    if spec.ttl_seconds < 1:
        raise ValidationError("ttl", "a finished job is kept at least one second")
    for dependency in spec.after:
        schema.validate_job_name(dependency, "after")
    if spec.name and spec.name in spec.after:
        raise ValidationError("after", f"{spec.name} cannot wait for itself")
    for key, value in spec.labels.items():
        schema.validate_label(key, value)
    for key in spec.meta:
        schema.validate_meta_key(key)
    # What the user wrote alone must fit; the full set is checked again when built.
    schema.validate_annotations_size(
        {schema.DESCRIPTION: spec.description}
        | {schema.META_PREFIX + k: v for k, v in spec.meta.items()}
    )
    for key, value in spec.node_selector.items():
        schema.validate_key(key, f"nodeSelector {key}")
        if len(value) > 63:
            raise ValidationError(f"nodeSelector {key}", "values are at most 63 characters")
    for key, qty in spec.resources.items():
        schema.validate_key(key, f"resource {key}")
        if parse_quantity(qty, f"resource {key}") < 0:
            raise ValidationError(
                f"resource {key}", f"{qty!r} is not a quantity a job can ask for: it is negative"
            )
    validate_env_names(spec.env)
    data.validate(spec.env, spec.secret_env, spec.mounts)


def validate_env_names(names: Iterable[str], field: str = "env") -> None:
    for key in names:
        data.check_env_name(key, field)


# An image reference, by the grammar of github.com/distribution/reference:
# [host[:port]/]path[:tag][@digest], the path of lowercase components.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::{_TAG})?(?:@{_DIGEST})?"
)
MAX_IMAGE_NAME = 255  # the name before any tag or digest


def validate_image(image: str, field: str = "image") -> None:
    """A container image reference the kubelet can pull (the API server only refuses
    surrounding whitespace; anything else would fail later, as InvalidImageName)."""
    found = _IMAGE.fullmatch(image)
    if found is None or len(found["name"]) > MAX_IMAGE_NAME:
        raise ValidationError(
            field,
            f"{image!r} is not a valid image reference",
            hint="e.g. ghcr.io/lab/train:1.4; lowercase, no spaces",
        )
