"""The values of Kubernetes JSON, one at a time (``ant.kube.convert`` walks the messages).

Scalars as Go's ``encoding/json`` takes them, with errors naming the field by its path;
and the types whose JSON Go writes its own way (see ``ant.kube.convert``): ``Quantity``,
``IntOrString``, ``Time``, ``MicroTime``, ``Duration``, ``FieldsV1`` and the named string
lists, read (``FILLERS``: fill a message from a value) and written (``DUMPERS``: a
message to its value; None leaves the field out, as Go writes null).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ant.errors import DecodeError, ValidationError
from ant.kube.quantity import parse_quantity

if TYPE_CHECKING:
    from google.protobuf.descriptor import FieldDescriptor

# The special types, by their proto names.
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime"
DURATION = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration"
FIELDS_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
# Go named slices (`type Verbs []string`): a message with `items`, a plain list in JSON.
STRING_LISTS = frozenset(
    {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs",
        "k8s.io.api.authentication.v1.ExtraValue",
        "k8s.io.api.authorization.v1.ExtraValue",
    }
)

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


# --- errors ---------------------------------------------------------------------------


def child_path(path: str, key: object) -> str:
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


def wrong_type(path: str, expected: str, value: object, hint: str | None = None) -> ValidationError:
    return ValidationError(path, f"expected {expected}, got {_describe(value)}", hint=hint)


def unknown_field(path: str, key: object, known: list[str]) -> ValidationError:
    hint = None
    if isinstance(key, str):
        lowered = {k.lower(): k for k in known}
        match = lowered.get(key.lower()) or next(
            iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None
        )
        hint = f"did you mean {match!r}?" if match else None
    return ValidationError(child_path(path, key), "unknown field", hint=hint)


# --- scalars --------------------------------------------------------------------------


def _read_string(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    hint = None
    if isinstance(value, bool | int | float):
        hint = f"quote it: '{json.dumps(value)}'"
    raise wrong_type(path, "a string", value, hint)


def _read_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    hint = "write true or false, unquoted" if value in ("true", "false") else None
    raise wrong_type(path, "a boolean", value, hint)


def _int_reader(kind: str) -> Reader:
    low, high = _INT_RANGES[kind]

    def read(value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            hint = None
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                hint = "write the number without quotes"
            raise wrong_type(path, "an integer", value, hint)
        if not low <= value <= high:
            raise ValidationError(path, f"{value} is out of range for {kind}")
        return value

    return read


_read_int32 = _int_reader("int32")


def _read_float(value: Any, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise wrong_type(path, "a number", value)


def _read_bytes(value: Any, path: str) -> bytes:
    if isinstance(value, bytes):  # YAML !!binary
        return value
    if not isinstance(value, str):
        raise wrong_type(path, "base64 bytes (a string)", value)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as e:
        raise ValidationError(path, f"invalid base64: {e}") from e


def scalar_reader(fd: FieldDescriptor) -> Reader:
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


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# --- special types: reading -----------------------------------------------------------


def _fill_quantity(msg: Any, value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise wrong_type(path, 'a quantity such as "500m" or "16Gi"', value)
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
        raise wrong_type(path, "an integer or a string", value)


def _parse_time(value: Any, path: str) -> tuple[int, int]:
    """(seconds since the epoch, nanoseconds) of an RFC 3339 string or a YAML timestamp."""
    if isinstance(value, datetime):  # PyYAML turns unquoted timestamps into datetimes
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = when - _EPOCH
        return delta // timedelta(seconds=1), when.microsecond * 1000
    if isinstance(value, date) or not isinstance(value, str):
        raise wrong_type(path, 'an RFC 3339 time such as "2026-11-24T15:00:00Z"', value)
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


def parse_duration(text: str) -> int:
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
        raise wrong_type(path, 'a duration such as "1m30s"', value)
    try:
        msg.duration = parse_duration(value)
    except (ValueError, ArithmeticError) as e:
        raise ValidationError(
            path, f"invalid duration {value!r}: {e}", hint='e.g. "90s", "1m30s", "1.5h"'
        ) from e


def json_bytes(value: Any, path: str) -> bytes:
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as e:
        raise ValidationError(path, f"not representable as JSON: {e}") from e


def _fill_fields_v1(msg: Any, value: Any, path: str) -> None:
    if not isinstance(value, Mapping):
        raise wrong_type(path, "a mapping", value)
    msg.Raw = json_bytes(value, path)


def _fill_string_list(msg: Any, value: Any, path: str) -> None:
    if not isinstance(value, list | tuple):
        raise wrong_type(path, "a list", value)
    msg.items.extend(_read_string(v, f"{path}[{i}]") for i, v in enumerate(value))


# --- special types: writing -----------------------------------------------------------


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


def format_duration(nanos: int) -> str:
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
    return format_duration(msg.duration)


def raw_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise DecodeError(
            f"{what} does not hold JSON ({len(raw)} bytes starting {raw[:8]!r})"
        ) from e


def _dump_fields_v1(msg: Any) -> Any:
    return raw_json(msg.Raw, "FieldsV1") if msg.Raw else None


def _dump_string_list(msg: Any) -> list[str]:
    return list(msg.items)


FILLERS: dict[str, Filler] = {
    QUANTITY: _fill_quantity,
    INT_OR_STRING: _fill_int_or_string,
    TIME: _fill_time,
    MICRO_TIME: _fill_micro_time,
    DURATION: _fill_duration,
    FIELDS_V1: _fill_fields_v1,
    **dict.fromkeys(STRING_LISTS, _fill_string_list),
}

DUMPERS: dict[str, Dumper] = {
    QUANTITY: _dump_quantity,
    INT_OR_STRING: _dump_int_or_string,
    TIME: _dump_time,
    MICRO_TIME: _dump_micro_time,
    DURATION: _dump_duration,
    FIELDS_V1: _dump_fields_v1,
    **dict.fromkeys(STRING_LISTS, _dump_string_list),
}
