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

Per-descriptor conversion tables are built on first use and cached; the values inside
(scalars, and the special types above but ``RawExtension``) are ``ant.kube.jsonvalues``'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ant.errors import ValidationError
from ant.kube import codec
from ant.kube.jsonvalues import (
    DUMPERS,
    FILLERS,
    Dumper,
    Filler,
    Reader,
    b64,
    child_path,
    json_bytes,
    raw_json,
    scalar_reader,
    unknown_field,
    wrong_type,
)

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, FieldDescriptor
    from google.protobuf.message import Message

__all__ = ["INLINE", "to_dict", "to_message"]

M = TypeVar("M", bound="Message")

RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
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
        raise wrong_type(path or desc.name, "a mapping", obj)
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


# --- RawExtension: reading ----------------------------------------------------------


def _fill_raw_extension(msg: Any, value: Any, path: str) -> None:
    msg.raw = json_bytes(value, path)


_SPECIAL_FILLERS: dict[str, Filler] = {**FILLERS, RAW_EXTENSION: _fill_raw_extension}


# --- RawExtension: writing ----------------------------------------------------------


def _dump_raw_extension(msg: Any) -> Any:
    raw: bytes = msg.raw
    if not raw:
        return None
    if raw.startswith(codec.MAGIC):  # a whole object in protobuf (e.g. a watch event's)
        env = codec.decode_envelope(raw)
        return {"apiVersion": env.api_version, "kind": env.kind} | to_dict(
            codec.decode_envelope_object(env)
        )
    return raw_json(raw, "RawExtension")


_SPECIAL_DUMPERS: dict[str, Dumper] = {**DUMPERS, RAW_EXTENSION: _dump_raw_extension}


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
            raise wrong_type(path, "a mapping", value)
        table = _table(desc)
        for key, item in value.items():
            entry = table.fields.get(key)
            if entry is None:
                if table.is_object and key in _TYPE_META_KEYS:
                    continue
                raise unknown_field(path, key, sorted(table.fields))
            if item is None:  # JSON null: the field stays unset, as in Go
                continue
            target = msg
            for name in entry.via:
                target = getattr(target, name)
            entry.set(target, item, child_path(path, key))

    return fill


def _read_list(value: Any, path: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise wrong_type(path, "a list", value)
    for i, item in enumerate(value):
        if item is None:
            raise ValidationError(f"{path}[{i}]", "null is not allowed in a list")
    return value


def _read_map(value: Any, path: str, read_key: Reader) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise wrong_type(path, "a mapping", value)
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
    read = scalar_reader(fd)
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
    read_key = scalar_reader(key_fd)
    if value_fd.message_type is not None:
        fill_one = _filler(value_fd.message_type)

        def set_message_map(msg: Any, value: Any, path: str) -> None:
            field = getattr(msg, name)
            for key, item in _read_map(value, path, read_key).items():
                fill_one(field.get_or_create(key), item, f"{path}[{key}]")

        return set_message_map
    read_value = scalar_reader(value_fd)

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
            return lambda m: {k: b64(m[k]) for k in sorted(m)}
        return lambda m: dict(sorted(m.items()))
    if fd.message_type is not None:
        one = _dumper(fd.message_type)
        return (lambda items: [one(v) for v in items]) if fd.is_repeated else one
    if fd.type == F.TYPE_BYTES:
        return (lambda items: [b64(v) for v in items]) if fd.is_repeated else b64
    return list if fd.is_repeated else None
