"""The user's config file: defaults below flags and environment variables.

``$ANT_CONFIG``, else ``$XDG_CONFIG_HOME/ant/config.yaml``, else ``~/.config/ant/config.yaml``:

    context: alice                 # kubeconfig context (--context, ANT_CONTEXT)
    namespace: research            # (-n, ANT_NAMESPACE)
    image: ghcr.io/lab/train:1.4   # ant submit's --image
    priority: opportunistic        # ant submit's --priority
    queue: ant                     # ant submit --queue (ANT_QUEUE)
    resources: {tpus: 4, cpu: "8", memory: 64Gi}   # ant submit's per-pod defaults
    clusters: [alice@dev-1, alice@dev-2]           # work across these (--clusters, ANT_CLUSTERS)
    contexts:                      # per kubeconfig context, over the keys above
      alice@prod: {namespace: prod-research, priority: normal}
      alice@dev-2: {cache: "https://cache.dev-2:8443"}   # that cluster's ant cache only

Precedence: flag > environment variable > this file (a context's section, then the top)
> built-in default. The file is read only when a value is needed that no flag or variable
gave (``yaml`` is imported then, not at start-up), and a file that is not there costs a
``stat``. Every key is checked when the file is read (unknown key: did-you-mean; wrong
type or value: the key and why), one line, exit 2.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ant.errors import UsageError, ValidationError

# What a context's section may set (the rest only make sense once).
PER_CONTEXT = ("namespace", "image", "priority", "queue", "resources")
# Only in a context's section: one cache URL at the top would send every cluster to it.
CONTEXT_ONLY = ("cache",)
KEYS = ("context", *PER_CONTEXT, "clusters", "contexts")
SECTION_KEYS = (*PER_CONTEXT, *CONTEXT_ONLY)
RESOURCE_KEYS = ("tpus", "gpus", "cpu", "memory")


def config_path(env: Mapping[str, str]) -> Path:
    if env.get("ANT_CONFIG"):
        return Path(env["ANT_CONFIG"]).expanduser()
    home = env.get("HOME") or str(Path.home())
    base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return Path(base) / "ant" / "config.yaml"


@dataclass
class Settings:
    """The config file, read on first use."""

    path: Path
    _doc: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(config_path(env))

    @cached_property
    def doc(self) -> dict[str, Any]:
        """The file's checked content; empty when there is no file."""
        if self._doc is not None:
            return self._doc
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise UsageError(f"cannot read the config file {self.path}: {e.strerror}") from e
        return check(parse(text, self.path), self.path)

    def get(self, key: str, context: str | None = None) -> Any:
        """``key`` for ``context`` (its section first), else the top-level value, else None."""
        section = self.doc.get("contexts", {}).get(context or "", {})
        if key in section:
            return section[key]
        return self.doc.get(key)

    def clusters(self) -> list[str]:
        """The contexts the file says to work across (``clusters``), or []."""
        return list(self.doc.get("clusters") or [])


def parse(text: str, path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(f"the config file {path} is not valid YAML{where}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValidationError(str(path), "a config file is a mapping of keys (context, ...)")
    return doc


def check(doc: Mapping[str, Any], path: Path | str) -> dict[str, Any]:
    """The document with every key known and every value valid; else a one-line error."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        where = f"{path}: {key}"
        _not_top_level(str(key), where)
        _known(str(key), KEYS, where)
        if key == "contexts":
            if not isinstance(value, dict):
                raise ValidationError(where, "a mapping of context name to settings")
            out[key] = {
                str(name): _section(section, f"{where}.{name}") for name, section in value.items()
            }
        else:
            out[key] = check_value(str(key), value, where)
    return out


def _section(section: Any, where: str) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise ValidationError(where, "a mapping of settings (namespace, image, ...)")
    out = {}
    for key, value in section.items():
        _known(str(key), SECTION_KEYS, f"{where}.{key}")
        out[str(key)] = check_value(str(key), value, f"{where}.{key}")
    return out


def _not_top_level(key: str, where: str) -> None:
    if key in CONTEXT_ONLY:
        raise ValidationError(
            where, "is set per cluster", hint=f"set contexts.CONTEXT.{key} for each context"
        )


def _known(key: str, keys: tuple[str, ...], where: str) -> None:
    if key not in keys:
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(keys)}"
        raise ValidationError(where, "unknown key", hint=hint)


def check_value(key: str, value: Any, where: str) -> Any:
    """One key's value, checked (cpu and memory become strings: `cpu: 8` is "8")."""
    from ant.jobs import schema

    if key == "resources":
        if not isinstance(value, dict):
            raise ValidationError(where, "a mapping: tpus, gpus, cpu, memory")
        return {str(k): _resource(str(k), v, f"{where}.{k}") for k, v in value.items()}
    if key == "clusters":
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            raise ValidationError(where, "a list of kubeconfig context names")
        return list(value)
    if not isinstance(value, str) or not value:
        raise ValidationError(where, f"{value!r} is not a non-empty string")
    if key == "namespace":
        schema.validate_namespace(value, where)
    elif key == "priority":
        schema.validate_priority(value, where)
    elif key == "queue":
        schema.validate_object_name(value, where)
    elif key == "cache" and not value.startswith(("https://", "http://")):
        raise ValidationError(
            where, f"{value!r} is not an http(s) URL", hint="e.g. https://host:8443"
        )
    return value


def _resource(key: str, value: Any, where: str) -> int | str:
    """tpus and gpus: whole numbers; cpu and memory: quantities, as strings."""
    from ant.kube.quantity import parse_quantity

    _known(key, RESOURCE_KEYS, where)
    if key in ("tpus", "gpus"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(where, f"{value!r} is not a whole number of {key}")
        return value
    text = str(value)
    parse_quantity(text, where)
    return text


# ---- ant config set / unset -----------------------------------------------------------------
def with_value(doc: Mapping[str, Any], dotted: str, text: str, path: Path) -> dict[str, Any]:
    """``doc`` with ``dotted`` (``namespace``, ``resources.tpus``,
    ``contexts.NAME.namespace``, ``clusters`` as ``a,b``) set to ``text``, checked."""
    parts = _parts(dotted)
    leaf = parts[-1]
    value: Any = text
    if leaf in ("tpus", "gpus") and text.isdigit():
        value = int(text)
    elif leaf == "clusters":
        value = [c.strip() for c in text.split(",") if c.strip()]
    new = _copy(doc)
    node = new
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValidationError(dotted, f"{part} is not a mapping in {path}")
        node = child
    node[leaf] = value
    return check(new, path)


def without_value(doc: Mapping[str, Any], dotted: str, path: Path) -> dict[str, Any]:
    """``doc`` without ``dotted`` (and without the sections that leaves empty)."""
    parts = _parts(dotted)
    new = _copy(doc)
    trail = [new]
    for part in parts[:-1]:
        child = trail[-1].get(part)
        if not isinstance(child, dict):
            return check(new, path)
        trail.append(child)
    trail[-1].pop(parts[-1], None)
    for parent, part in zip(reversed(trail[:-1]), reversed(parts[:-1]), strict=True):
        if not parent[part]:
            del parent[part]
    return check(new, path)


def _parts(dotted: str) -> list[str]:
    """A dotted key's parts, each checked against where it may appear."""
    parts = dotted.split(".")
    where = dotted
    _not_top_level(parts[0], where)
    _known(parts[0], KEYS, where)
    if parts[0] == "contexts":
        if len(parts) < 3 or not parts[1]:
            raise ValidationError(where, "name a context and a key: contexts.NAME.namespace")
        _known(parts[2], SECTION_KEYS, where)
        rest = parts[2:]
    else:
        rest = parts
    if rest[0] == "resources":
        if len(rest) != 2:
            raise ValidationError(where, "name a resource: resources.tpus, .gpus, .cpu, .memory")
        _known(rest[1], RESOURCE_KEYS, where)
    elif len(rest) != 1:
        raise ValidationError(where, f"{rest[0]} has no keys of its own")
    return parts


def _copy(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in doc.items()}


def dump(doc: Mapping[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False))
