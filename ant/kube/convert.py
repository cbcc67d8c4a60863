"""Kubernetes JSON (as users write it in YAML) <-> generated protobuf messages.

Why not ``google.protobuf.json_format``: Kubernetes' JSON is the JSON of its Go structs,
not protobuf's canonical JSON mapping, and the two disagree wherever a Go type has its
own ``MarshalJSON`` or its struct tags say so:

* ``resource.Quantity`` is ``"500m"``, not ``{"string": "500m"}``; ``intstr.IntOrString``
  is ``8080`` or ``"http"``, not ``{"type": 0, "intVal": 8080}``.
* ``meta.v1.Time`` / ``MicroTime`` are RFC 3339 strings, not ``{"seconds": ...}``;
  ``meta.v1.Duration`` is a Go duration string (``"1m30s"``) over int64 nanoseconds.
* ``runtime.RawExtension`` and ``meta.v1.FieldsV1`` hold raw JSON bytes that are the
  value itself; ``Verbs`` / ``ExtraValue`` are messages around a list that is a plain list.
* Embedded Go structs tagged ``json:",inline"`` are a message field in the proto but
  their fields sit directly in the parent's JSON: ``volumes[0].emptyDir``, not
  ``volumes[0].volumeSource.emptyDir``; ``readinessProbe.tcpSocket``, not
  ``readinessProbe.handler.tcpSocket``. The descriptors do not record this, so
  ``INLINE`` lists them (from the ``json:",inline"`` tags of k8s.io/api v0.36).
* int64 is a JSON number (protobuf's mapping makes it a string).

Everything else follows the descriptors: the field names of Kubernetes' protos are their
JSON names, maps are objects, repeated fields are lists, bytes are base64.

``to_message`` is strict: unknown keys (with a "did you mean" hint), wrong types, bad
quantities and times raise ``ValidationError`` naming the field by its path, in
Kubernetes' own notation: ``.field`` for fields, ``[0]`` for list items, ``[key]`` for
map keys (``spec.template.spec.containers[0].resources.limits[google.com/tpu]``).
JSON ``null`` leaves a field unset, as in Go (in a list or as a map value it is an
error: write ``""``). ``apiVersion`` and ``kind`` are accepted
and dropped at the top level and in any message with ``metadata`` (they travel in the
protobuf envelope, see ``ant.kube.codec``).

``to_dict`` emits the fields the message has: every field with proto2 presence that is
set (even to ``""`` or ``0``: the API server's Go code writes its non-pointer fields
always, and a pointer field set to zero means something), non-empty lists and maps
(keys sorted, as Go writes them).
A zero ``Time`` (an empty message, or Go's year-1 zero) is left out, as Go writes
``null``. Normalisations a round trip shows: numbers given for quantities come back as
strings (``4`` -> ``"4"``; the server canonicalises them further, ``0.5`` -> ``"500m"``),
``Time`` drops fractions of a second and ``MicroTime`` keeps microseconds, times come
back in UTC, and ``apiVersion``/``kind`` are gone.

Per-descriptor conversion tables are built on first use and cached.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ant.errors import DecodeError, ValidationError
from ant.kube import codec
from ant.kube.quantity import parse_quantity

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, FieldDescriptor
    from google.protobuf.message import Message

__all__ = ["INLINE", "to_dict", "to_message"]

M = TypeVar("M", bound="Message")

QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime"
DURATION = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration"
FIELDS_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
# Go named slices (`type Verbs []string`): a message with `items`, a plain list in JSON.
STRING_LISTS = frozenset(
    {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs",
        "k8s.io.api.authentication.v1.ExtraValue",
        "k8s.io.api.authorization.v1.ExtraValue",
    }
)
# (field name, field's message type) of the embedded structs tagged `json:",inline"`.
INLINE = frozenset(
    {
        ("volumeSource", "k8s.io.api.core.v1.VolumeSource"),
        ("persistentVolumeSource", "k8s.io.api.core.v1.PersistentVolumeSource"),
        ("localObjectReference", "k8s.io.api.core.v1.LocalObjectReference"),
        ("handler", "k8s.io.api.core.v1.ProbeHandler"),
        ("ephemeralContainerCommon", "k8s.io.api.core.v1.EphemeralContainerCommon"),
    }
)
_OBJECT_METAS = frozenset(
    {
        "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "k8s.io.apimachinery.pkg.apis.meta.v1.ListMeta",
    }
)
_TYPE_META_KEYS = frozenset({"apiVersion", "kind"})

# RFC 3339 as Go's time.Parse(time.RFC3339, ...) takes it (fractional seconds allowed).
_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME = -62135596800  # time.Time{}.Unix(): 0001-01-01T00:00:00Z, JSON null
_SECOND = 1_000_000_000
_DURATION_PART = re.compile(r"([0-9]*)(\.[0-9]*)?([^0-9.]*)")  # number, fraction, unit
# Go takes "µs" with the micro sign (U+00B5) and with the Greek mu (U+03BC).
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": _SECOND,
    "m": 60 * _SECOND,
    "h": 3600 * _SECOND,
}
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}

# A value from the user's document (path names it) -> what the proto field takes.
Reader = Callable[[Any, str], Any]
# Fill a message (first argument) from a user's value at a path.
Filler = Callable[[Any, Any, str], None]
# A message -> its JSON value; None means "leave the field out" (Go's null).
Dumper = Callable[[Any], Any]


# --- public API ----------------------------------------------------------------------


def to_message(obj: Mapping[str, Any], cls: type[M], *, path: str = "") -> M:
    """A ``cls`` filled from Kubernetes JSON; ``ValidationError`` naming the bad field.

    ``path`` prefixes the field paths in errors (e.g. ``"spec"`` when ``obj`` is a spec).
    """
    msg = cls()
    desc = cast("Descriptor", msg.DESCRIPTOR)
    if desc.full_name in _SPECIAL_FILLERS:
        _SPECIAL_FILLERS[desc.full_name](msg, obj, path or desc.name)
        return msg
    if not isinstance(obj, Mapping):
        raise _wrong_type(path or desc.name, "a mapping", obj)
    top = {k: v for k, v in obj.items() if k not in _TYPE_META_KEYS}
    _filler(desc)(msg, top, path)
    return msg


def to_dict(msg: Message) -> dict[str, Any]:
    """The Kubernetes JSON form of ``msg``: set fields only, in field-number order, map
    keys sorted (as Go writes them).

    ``DecodeError`` when raw bytes inside (``RawExtension``, ``FieldsV1``) are neither
    JSON nor a protobuf object ant knows. ``TypeError`` when ``msg`` itself is one of the
    special types (``Quantity``, ``Time``, ...), whose JSON is no object: convert the
    message that holds it.
    """
    desc = cast("Descriptor", msg.DESCRIPTOR)
    if desc.full_name in _SPECIAL_DUMPERS:
        raise TypeError(f"{desc.full_name} is not a JSON object in Kubernetes JSON")
    out: dict[str, Any] = _dumper(desc)(msg)
    return out


# --- errors --------------------------------------------------------------------------


def _child(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _describe(value: object) -> str:
    """``string "5"``, ``a list``: what the user wrote, short and on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if isinstance(value, int | float | str):
        kind = "string" if isinstance(value, str) else "number"
        text = json.dumps(value, ensure_ascii=False)
        return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _wrong_type(
    path: str, expected: str, value: object, hint: str | None = None
) -> ValidationError:
    return ValidationError(path, f"expected {expected}, got {_describe(value)}", hint=hint)


def _unknown(path: str, key: object, known: list[str]) -> ValidationError:
    hint = None
    if isinstance(key, str):
        lowered = {k.lower(): k for k in known}
        match = lowered.get(key.lower()) or next(
            iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None
        )
        hint = f"did you mean {match!r}?" if match else None
    return ValidationError(_child(path, key), "unknown field", hint=hint)


# --- scalars -------------------------------------------------------------------------


def _read_string(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    hint = None
    if isinstance(value, bool | int | float):
        hint = f"quote it: '{json.dumps(value)}'"
    raise _wrong_type(path, "a string", value, hint)


def _read_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    hint = "write true or false, unquoted" if value in ("true", "false") else None
    raise _wrong_type(path, "a boolean", value, hint)


def _int_reader(kind: str) -> Reader:
    low, high = _INT_RANGES[kind]

    def read(value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            hint = None
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                hint = "write the number without quotes"
            raise _wrong_type(path, "an integer", value, hint)
        if not low <= value <= high:
            raise ValidationError(path, f"{value} is out of range for {kind}")
        return value

    return read


_read_int32 = _int_reader("int32")


def _read_float(value: Any, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _wrong_type(path, "a number", value)


def _read_bytes(value: Any, path: str) -> bytes:
    if isinstance(value, bytes):  # YAML !!binary
        return value
    if not isinstance(value, str):
        raise _wrong_type(path, "base64 bytes (a string)", value)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as e:
        raise ValidationError(path, f"invalid base64: {e}") from e


def _scalar_reader(fd: FieldDescriptor) -> Reader:
    from google.protobuf.descriptor import FieldDescriptor as F

    if fd.type == F.TYPE_STRING:
        return _read_string
    if fd.type == F.TYPE_BOOL:
        return _read_bool
    if fd.type == F.TYPE_BYTES:
        return _read_bytes
    if fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return _read_float
    if fd.type in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return _int_reader("int32")
    if fd.type in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return _int_reader("int64")
    if fd.type in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return _int_reader("uint32")
    if fd.type in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return _int_reader("uint64")
    raise TypeError(f"{fd.full_name}: field type {fd.type} is not used by Kubernetes protos")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# --- special types: reading ----------------------------------------------------------


def _fill_quantity(msg: Any, value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _wrong_type(path, 'a quantity such as "500m" or "16Gi"', value)
    text = value if isinstance(value, str) else repr(value)
    parse_quantity(text, path)
    msg.string = text


def _fill_int_or_string(msg: Any, value: Any, path: str) -> None:
    if isinstance(value, str):
        msg.type = 1
        msg.strVal = value
    elif isinstance(value, int) and not isinstance(value, bool):
        msg.type = 0
        msg.intVal = _read_int32(value, path)
    else:
        raise _wrong_type(path, "an integer or a string", value)


def _parse_time(value: Any, path: str) -> tuple[int, int]:
    """(seconds since the epoch, nanoseconds) of an RFC 3339 string or a YAML timestamp."""
    if isinstance(value, datetime):  # PyYAML turns unquoted timestamps into datetimes
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = when - _EPOCH
        return delta // timedelta(seconds=1), when.microsecond * 1000
    if isinstance(value, date) or not isinstance(value, str):
        raise _wrong_type(path, 'an RFC 3339 time such as "2026-11-24T15:00:00Z"', value)
    hint = 'RFC 3339, e.g. "2026-11-24T15:00:00Z"'
    m = _RFC3339_RE.fullmatch(value)
    if m is None:
        raise ValidationError(path, f"invalid time {value!r}", hint=hint)
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
        zone = m.group(8)
        offset = timedelta(0) if zone == "Z" else _offset(zone)
        when = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as e:
        raise ValidationError(path, f"invalid time {value!r}: {e}", hint=hint) from e
    nanos = int((m.group(7) or "").ljust(9, "0"))
    return (when - _EPOCH) // timedelta(seconds=1), nanos


def _offset(zone: str) -> timedelta:
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad zone offset {zone}")
    sign = -1 if zone[0] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)


def _fill_time(msg: Any, value: Any, path: str) -> None:
    # Go's Time keeps whole seconds on the wire (time_proto.go drops the nanoseconds).
    msg.seconds = _parse_time(value, path)[0]


def _fill_micro_time(msg: Any, value: Any, path: str) -> None:
    seconds, nanos = _parse_time(value, path)
    msg.seconds = seconds
    msg.nanos = nanos // 1000 * 1000


def _parse_duration(text: str) -> int:
    """Go's time.ParseDuration, rounding included: ``"1h2m3.5s"``, ``"-300ms"``, ``"0"``."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0
    if not body:
        raise ValueError("empty duration")
    total, pos = 0, 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        assert m is not None  # every group may be empty
        whole, frac, unit_name = m.groups()
        if not whole and len(frac or ".") == 1:
            raise ValueError("expected a number")
        unit = _DURATION_UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f"unknown unit {unit_name!r}" if unit_name else "missing unit")
        total += int(whole or "0") * unit + _duration_fraction((frac or ".")[1:], unit)
        pos = m.end()
        if total > 2**63:
            raise ValueError("out of range")
    if text.startswith("-"):
        return -total
    if total >= 2**63:
        raise ValueError("out of range")
    return total


def _duration_fraction(digits: str, unit: int) -> int:
    """Go's ``leadingFraction`` and float scaling (digits past int64 are ignored)."""
    value, scale = 0, 1.0
    for ch in digits:
        if value > (2**63 - 1) // 10 or value * 10 + int(ch) > 2**63:
            break
        value, scale = value * 10 + int(ch), scale * 10
    return int(float(value) * (float(unit) / scale))


def _fill_duration(msg: Any, value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _wrong_type(path, 'a duration such as "1m30s"', value)
    try:
        msg.duration = _parse_duration(value)
    except (ValueError, ArithmeticError) as e:
        raise ValidationError(
            path, f"invalid duration {value!r}: {e}", hint='e.g. "90s", "1m30s", "1.5h"'
        ) from e


def _json_bytes(value: Any, path: str) -> bytes:
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as e:
        raise ValidationError(path, f"not representable as JSON: {e}") from e


def _fill_raw_extension(msg: Any, value: Any, path: str) -> None:
    msg.raw = _json_bytes(value, path)


def _fill_fields_v1(msg: Any, value: Any, path: str) -> None:
    if not isinstance(value, Mapping):
        raise _wrong_type(path, "a mapping", value)
    msg.Raw = _json_bytes(value, path)


def _fill_string_list(msg: Any, value: Any, path: str) -> None:
    if not isinstance(value, list | tuple):
        raise _wrong_type(path, "a list", value)
    msg.items.extend(_read_string(v, f"{path}[{i}]") for i, v in enumerate(value))


_SPECIAL_FILLERS: dict[str, Filler] = {
    QUANTITY: _fill_quantity,
    INT_OR_STRING: _fill_int_or_string,
    TIME: _fill_time,
    MICRO_TIME: _fill_micro_time,
    DURATION: _fill_duration,
    RAW_EXTENSION: _fill_raw_extension,
    FIELDS_V1: _fill_fields_v1,
    **dict.fromkeys(STRING_LISTS, _fill_string_list),
}


# --- special types: writing ----------------------------------------------------------


def _dump_quantity(msg: Any) -> str:
    text: str = msg.string
    return text


def _dump_int_or_string(msg: Any) -> int | str:
    value: int | str = msg.strVal if msg.type == 1 else msg.intVal
    return value


def _utc(seconds: int) -> datetime:
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError as e:
        raise DecodeError(f"time {seconds}s from the epoch is outside years 1-9999") from e


def _dump_time(msg: Any) -> str | None:
    if not msg.HasField("seconds") or msg.seconds == _GO_ZERO_TIME:
        return None
    t = _utc(msg.seconds)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _dump_micro_time(msg: Any) -> str | None:
    if not msg.HasField("seconds") or (msg.seconds == _GO_ZERO_TIME and not msg.nanos):
        return None
    t = _utc(msg.seconds)
    micros = msg.nanos // 1000
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{micros:06d}Z"
    )


def _fraction(value: int, digits: int) -> str:
    """``value / 10**digits`` without trailing zeros: (1500, 3) -> "1.5"."""
    whole, frac = divmod(value, 10**digits)
    text = str(frac).rjust(digits, "0").rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def _format_duration(nanos: int) -> str:
    """Go's time.Duration.String: "1h0m0s", "1m30s", "1.5s", "300ms", "0s"."""
    if nanos == 0:
        return "0s"
    sign, u = ("-" if nanos < 0 else ""), abs(nanos)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 3)}\u00b5s"
    if u < _SECOND:
        return f"{sign}{_fraction(u, 6)}ms"
    whole, frac = divmod(u, _SECOND)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{_fraction(seconds * _SECOND + frac, 9)}s"


def _dump_duration(msg: Any) -> str:
    return _format_duration(msg.duration)


def _raw_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise DecodeError(
            f"{what} does not hold JSON ({len(raw)} bytes starting {raw[:8]!r})"
        ) from e


def _dump_raw_extension(msg: Any) -> Any:
    raw: bytes = msg.raw
    if not raw:
        return None
    if raw.startswith(codec.MAGIC):  # a whole object in protobuf (e.g. a watch event's)
        env = codec.decode_envelope(raw)
        return {"apiVersion": env.api_version, "kind": env.kind} | to_dict(
            codec.decode_envelope_object(env)
        )
    return _raw_json(raw, "RawExtension")


def _dump_fields_v1(msg: Any) -> Any:
    return _raw_json(msg.Raw, "FieldsV1") if msg.Raw else None


def _dump_string_list(msg: Any) -> list[str]:
    return list(msg.items)


_SPECIAL_DUMPERS: dict[str, Dumper] = {
    QUANTITY: _dump_quantity,
    INT_OR_STRING: _dump_int_or_string,
    TIME: _dump_time,
    MICRO_TIME: _dump_micro_time,
    DURATION: _dump_duration,
    RAW_EXTENSION: _dump_raw_extension,
    FIELDS_V1: _dump_fields_v1,
    **dict.fromkeys(STRING_LISTS, _dump_string_list),
}


# --- reading: per-descriptor tables --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """How to set one JSON key: the inline fields to go through, then the setter."""

    via: tuple[str, ...]
    set: Filler


@dataclass(frozen=True, slots=True)
class _Table:
    fields: dict[str, _Entry]
    is_object: bool  # has ObjectMeta/ListMeta metadata: apiVersion and kind are allowed


_FILLERS: dict[str, Filler] = {}
_TABLES: dict[str, _Table] = {}


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def _is_inline(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and (fd.name, fd.message_type.full_name) in INLINE


def _filler(desc: Descriptor) -> Filler:
    """Fill a ``desc`` message from a JSON value; cached, built lazily (types recurse)."""
    name = desc.full_name
    fill = _FILLERS.get(name) or _SPECIAL_FILLERS.get(name)
    if fill is None:
        fill = _FILLERS[name] = _struct_filler(desc)
    return fill


def _table(desc: Descriptor) -> _Table:
    table = _TABLES.get(desc.full_name)
    if table is None:
        table = _TABLES[desc.full_name] = _build_table(desc)
    return table


def _build_table(desc: Descriptor) -> _Table:
    fields: dict[str, _Entry] = {}
    for fd in desc.fields:
        if _is_inline(fd):
            assert fd.message_type is not None
            inner = _table(fd.message_type).fields
            for key, entry in inner.items():
                # Go: a field of the outer struct hides an inlined one of the same name.
                fields.setdefault(key, _Entry((fd.name, *entry.via), entry.set))
    for fd in desc.fields:
        if not _is_inline(fd):
            fields[fd.json_name] = _Entry((), _setter(fd))
    is_object = any(
        fd.json_name == "metadata"
        and fd.message_type is not None
        and fd.message_type.full_name in _OBJECT_METAS
        for fd in desc.fields
    )
    return _Table(fields, is_object)


def _struct_filler(desc: Descriptor) -> Filler:
    def fill(msg: Any, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _wrong_type(path, "a mapping", value)
        table = _table(desc)
        for key, item in value.items():
            entry = table.fields.get(key)
            if entry is None:
                if table.is_object and key in _TYPE_META_KEYS:
                    continue
                raise _unknown(path, key, sorted(table.fields))
            if item is None:  # JSON null: the field stays unset, as in Go
                continue
            target = msg
            for name in entry.via:
                target = getattr(target, name)
            entry.set(target, item, _child(path, key))

    return fill


def _read_list(value: Any, path: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _wrong_type(path, "a list", value)
    for i, item in enumerate(value):
        if item is None:
            raise ValidationError(f"{path}[{i}]", "null is not allowed in a list")
    return value


def _read_map(value: Any, path: str, read_key: Reader) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _wrong_type(path, "a mapping", value)
    for key, item in value.items():
        read_key(key, f"{path}[{key}]")
        if item is None:
            raise ValidationError(
                f"{path}[{key}]", "null is not allowed as a map value", hint='write "" for empty'
            )
    return value


def _setter(fd: FieldDescriptor) -> Filler:
    """Set field ``fd`` of a message from a JSON value."""
    name = fd.name
    if _is_map(fd):
        assert fd.message_type is not None
        return _map_setter(name, fd.message_type)
    if fd.message_type is not None:
        fill_one = _filler(fd.message_type)
        if fd.is_repeated:

            def set_messages(msg: Any, value: Any, path: str) -> None:
                field = getattr(msg, name)
                for i, item in enumerate(_read_list(value, path)):
                    fill_one(field.add(), item, f"{path}[{i}]")

            return set_messages

        def set_message(msg: Any, value: Any, path: str) -> None:
            sub = getattr(msg, name)
            sub.SetInParent()  # `{}` still means "present"
            fill_one(sub, value, path)

        return set_message
    read = _scalar_reader(fd)
    if fd.is_repeated:

        def set_scalars(msg: Any, value: Any, path: str) -> None:
            items = _read_list(value, path)
            getattr(msg, name).extend([read(v, f"{path}[{i}]") for i, v in enumerate(items)])

        return set_scalars

    def set_scalar(msg: Any, value: Any, path: str) -> None:
        setattr(msg, name, read(value, path))

    return set_scalar


def _map_setter(name: str, entry: Descriptor) -> Filler:
    key_fd, value_fd = entry.fields_by_name["key"], entry.fields_by_name["value"]
    read_key = _scalar_reader(key_fd)
    if value_fd.message_type is not None:
        fill_one = _filler(value_fd.message_type)

        def set_message_map(msg: Any, value: Any, path: str) -> None:
            field = getattr(msg, name)
            for key, item in _read_map(value, path, read_key).items():
                fill_one(field.get_or_create(key), item, f"{path}[{key}]")

        return set_message_map
    read_value = _scalar_reader(value_fd)

    def set_scalar_map(msg: Any, value: Any, path: str) -> None:
        field = getattr(msg, name)
        for key, item in _read_map(value, path, read_key).items():
            field[key] = read_value(item, f"{path}[{key}]")

    return set_scalar_map


# --- writing: per-descriptor plans ---------------------------------------------------

# field number -> (JSON key, dumper). A None dumper means "the value as it is"; an empty
# key means an inline field whose dict merges into the parent's.
_Plan = dict[int, tuple[str, Dumper | None]]
_DUMPERS: dict[str, Dumper] = {}


def _dumper(desc: Descriptor) -> Dumper:
    name = desc.full_name
    dump = _DUMPERS.get(name) or _SPECIAL_DUMPERS.get(name)
    if dump is None:
        dump = _DUMPERS[name] = _struct_dumper(desc)
    return dump


def _struct_dumper(desc: Descriptor) -> Dumper:
    plans: list[_Plan] = []  # built on first call: the plan needs the field types' dumpers

    def dump(msg: Any) -> dict[str, Any]:
        if not plans:
            plans.append(_plan(desc))
        plan = plans[0]
        out: dict[str, Any] = {}
        for fd, value in msg.ListFields():
            key, fn = plan[fd.number]
            if fn is None:
                out[key] = value
                continue
            converted = fn(value)
            if converted is None:
                continue
            if key:
                out[key] = converted
            else:
                out.update(converted)
        return out

    return dump


def _plan(desc: Descriptor) -> _Plan:
    return {
        fd.number: ("" if _is_inline(fd) else fd.json_name, _field_dumper(fd)) for fd in desc.fields
    }


def _field_dumper(fd: FieldDescriptor) -> Dumper | None:
    from google.protobuf.descriptor import FieldDescriptor as F

    if _is_map(fd):  # keys sorted, as Go's encoding/json writes them
        assert fd.message_type is not None
        value_fd = fd.message_type.fields_by_name["value"]
        if value_fd.message_type is not None:
            one = _dumper(value_fd.message_type)
            return lambda m: {k: one(m[k]) for k in sorted(m)}
        if value_fd.type == F.TYPE_BYTES:
            return lambda m: {k: _b64(m[k]) for k in sorted(m)}
        return lambda m: dict(sorted(m.items()))
    if fd.message_type is not None:
        one = _dumper(fd.message_type)
        return (lambda items: [one(v) for v in items]) if fd.is_repeated else one
    if fd.type == F.TYPE_BYTES:
        return (lambda items: [_b64(v) for v in items]) if fd.is_repeated else _b64
    return list if fd.is_repeated else None
