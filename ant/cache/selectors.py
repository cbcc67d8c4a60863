"""Label and field selectors, parsed and matched as the API server does.

Label selectors (k8s.io/apimachinery ``labels.Parse``): comma-separated requirements
``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``,
``k>n``, ``k<n``. ``!=`` and ``notin`` also match objects without the key, as upstream.

Field selectors (``fields.ParseSelector``): ``f=v``, ``f==v``, ``f!=v``, comma-separated,
over the fields a resource supports (``metadata.name``, ``metadata.namespace`` and a few
per kind); any other field is refused, as the API server refuses it, with a 400.

Pure: no I/O. Invalid selectors raise ``BadRequest``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ant.errors import BadRequest, Status

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s=!(),<>]+)")


def _bad(message: str) -> BadRequest:
    return BadRequest(Status(code=400, reason="BadRequest", message=message))


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, >, <
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.op
        if op in ("=", "in"):
            return value is not None and value in self.values
        if op in ("!=", "notin"):
            return value is None or value not in self.values
        if op == "exists":
            return value is not None
        if op == "!exists":
            return value is None
        if value is None:
            return False
        try:
            have, want = int(value), int(next(iter(self.values)))
        except ValueError:
            return False
        return have > want if op == ">" else have < want

    def equals(self) -> str | None:
        """The one value this requirement pins its key to, if it does."""
        if self.op in ("=", "in") and len(self.values) == 1:
            return next(iter(self.values))
        return None


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def pinned(self, key: str) -> str | None:
        """The value ``key`` must have for a match (an index can answer), if any."""
        for r in self.requirements:
            if r.key == key:
                value = r.equals()
                if value is not None:
                    return value
        return None

    @property
    def empty(self) -> bool:
        return not self.requirements


def parse_labels(text: str | None) -> LabelSelector:
    """A label selector; ``BadRequest`` naming what is wrong."""
    if not text or not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_LabelParser(text).requirements()))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def bad(self, why: str) -> BadRequest:
        return _bad(f"invalid label selector {self.text!r}: {why}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.bad("it ends early")
        self.pos += 1
        return token

    def requirements(self) -> list[Requirement]:
        out = [self.requirement()]
        while self.peek() is not None:
            if self.take() != ",":
                raise self.bad(f"expected ',' before {self.tokens[self.pos - 1]!r}")
            out.append(self.requirement())
        return out

    def requirement(self) -> Requirement:
        first = self.take()
        if first == "!":
            return Requirement(self.key(self.take()), "!exists")
        key = self.key(first)
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.pos += 1
        if op in ("=", "==", "!="):
            value = "" if self.peek() in (None, ",") else self.take()
            return Requirement(key, "!=" if op == "!=" else "=", frozenset([self.value(value)]))
        if op in (">", "<"):
            value = self.take()
            if not re.fullmatch(r"-?\d+", value):
                raise self.bad(f"{value!r} is not an integer")
            return Requirement(key, op, frozenset([value]))
        if op in ("in", "notin"):
            if self.take() != "(":
                raise self.bad(f"expected '(' after {op}")
            values: set[str] = set()
            while (item := self.take()) != ")":
                if item != ",":
                    values.add(self.value(item))
            return Requirement(key, op, frozenset(values))
        raise self.bad(f"unexpected {op!r} after {key!r}")

    def key(self, key: str) -> str:
        if key in _OPERATORS or not _KEY.match(key):
            raise self.bad(f"{key!r} is not a valid label key")
        return key

    def value(self, value: str) -> str:
        if not _VALUE.match(value):
            raise self.bad(f"{value!r} is not a valid label value")
        return value


_OPERATORS = frozenset({"=", "==", "!=", "!", "(", ")", ",", ">", "<"})


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space
            raise _bad(f"invalid label selector {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


# --- field selectors -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negate


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def pinned(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and not r.negate:
                return r.value
        return None

    @property
    def empty(self) -> bool:
        return not self.requirements


def parse_fields(text: str | None, supported: frozenset[str]) -> FieldSelector:
    """A field selector over ``supported`` fields; anything else is a 400, as upstream."""
    if not text or not text.strip():
        return FieldSelector()
    requirements = []
    for part in _split_fields(text):
        for op in ("!=", "==", "="):
            field, sep, value = part.partition(op)
            if sep:
                break
        else:
            raise _bad(f"invalid field selector {text!r}: {part!r} has no operator")
        field = field.strip()
        if field not in supported:
            raise _bad(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, _unescape(value.strip()), op == "!="))
    return FieldSelector(tuple(requirements))


def _split_fields(text: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
