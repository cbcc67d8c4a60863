"""Kubernetes protobuf on the wire: envelope, kind registry, Status and watch framing.

Pure functions: no I/O, no printing. The generated classes (``ant.kube.proto``) and
``google.protobuf`` are imported lazily inside functions so that importing this module
stays cheap.

Wire format (apimachinery ``pkg/runtime/serializer/protobuf``):

* A body is ``k8s\\x00`` followed by a serialized ``runtime.Unknown``: ``typeMeta``
  (apiVersion, kind), ``raw`` (the object's own bytes), ``contentEncoding``,
  ``contentType``. Lists use the same envelope (kind ``StatefulSetList``, ...); errors
  too (kind ``Status``, apiVersion ``v1``).
* A watch response (``;stream=watch``) is a sequence of frames: a 4-byte big-endian
  length, then a ``meta.v1.WatchEvent`` with no magic and no envelope, whose
  ``object.raw`` holds the object *with* the full ``k8s\\x00`` + Unknown envelope.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ant.errors import DecodeError, Status, StatusCause

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ant.kube.proto import meta_v1_pb2

__all__ = [
    "JSON",
    "KINDS",
    "MAGIC",
    "MAX_WATCH_FRAME",
    "PROTOBUF",
    "PROTOBUF_WATCH",
    "STATUS_FULL_NAME",
    "Envelope",
    "backend",
    "check_upb",
    "decode",
    "decode_envelope",
    "decode_envelope_object",
    "decode_watch_event",
    "encode",
    "encode_envelope",
    "iter_watch_frames",
    "message_class",
    "status_from_json",
    "status_from_message",
]

PROTOBUF = "application/vnd.kubernetes.protobuf"
PROTOBUF_WATCH = "application/vnd.kubernetes.protobuf;stream=watch"
JSON = "application/json"
MAGIC = b"k8s\x00"

# client-go refuses watch frames above 16 MiB; a bigger length means a corrupt stream
# (or a non-protobuf body read as one: b'{"ty' would claim ~2 GB).
MAX_WATCH_FRAME = 16 * 1024 * 1024

M = TypeVar("M", bound="Message")


def _kinds(api_version: str, module: str, *names: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Entries for ``names`` and their ``...List`` kinds."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for name in names:
        out[(api_version, name)] = (module, name)
        out[(api_version, name + "List")] = (module, name + "List")
    return out


# (apiVersion, kind) -> (module under ant.kube.proto, message name): the kinds ant uses.
KINDS: Mapping[tuple[str, str], tuple[str, str]] = {
    **_kinds("apps/v1", "apps_v1_pb2", "StatefulSet", "ControllerRevision"),
    **_kinds(
        "v1",
        "core_v1_pb2",
        *("Pod", "Service", "Event", "Node", "Namespace", "ConfigMap"),
        *("Secret", "PersistentVolumeClaim"),
    ),
    **_kinds("events.k8s.io/v1", "events_v1_pb2", "Event"),
    **_kinds("scheduling.k8s.io/v1", "scheduling_v1_pb2", "PriorityClass"),
    **_kinds("scheduling.k8s.io/v1beta1", "scheduling_v1beta1_pb2", "PodGroup"),
    **_kinds("policy/v1", "policy_v1_pb2", "PodDisruptionBudget"),
    **_kinds("coordination.k8s.io/v1", "coordination_v1_pb2", "Lease"),
    **_kinds("meta.k8s.io/v1", "meta_v1_pb2", "PartialObjectMetadata"),
    ("autoscaling/v1", "Scale"): ("autoscaling_v1_pb2", "Scale"),
    ("authentication.k8s.io/v1", "TokenReview"): ("authentication_v1_pb2", "TokenReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"): (
        "authentication_v1_pb2",
        "SelfSubjectReview",
    ),
    ("authorization.k8s.io/v1", "SubjectAccessReview"): (
        "authorization_v1_pb2",
        "SubjectAccessReview",
    ),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): (
        "authorization_v1_pb2",
        "SelfSubjectAccessReview",
    ),
    # Status is an "unversioned" type the server always labels apiVersion v1.
    ("v1", "Status"): ("meta_v1_pb2", "Status"),
    ("meta.k8s.io/v1", "Status"): ("meta_v1_pb2", "Status"),
    ("v1", "WatchEvent"): ("meta_v1_pb2", "WatchEvent"),
    ("meta.k8s.io/v1", "WatchEvent"): ("meta_v1_pb2", "WatchEvent"),
}

_classes: dict[tuple[str, str], type[Message]] = {}


# --- envelope ------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A decoded ``runtime.Unknown``: the object's type and its still-encoded bytes."""

    api_version: str
    kind: str
    raw: bytes


def _describe(data: bytes | memoryview) -> str:
    head = bytes(data[:8])
    return f"{len(data)} bytes starting {head!r}" if data else "an empty body"


def decode_envelope(body: bytes) -> Envelope:
    """Split a protobuf body into its type and raw object bytes.

    Raises ``DecodeError`` when the magic prefix is missing (e.g. a JSON body) or the
    ``runtime.Unknown`` does not parse or names no kind.
    """
    from google.protobuf.message import DecodeError as ProtoDecodeError

    from ant.kube.proto import runtime_pb2

    if not body.startswith(MAGIC):
        raise DecodeError(
            f"not a Kubernetes protobuf body (no {MAGIC!r} prefix): got {_describe(body)}"
        )
    try:
        # A memoryview spares copying the body (both backends accept any buffer; the
        # stubs say bytes).
        unknown = runtime_pb2.Unknown.FromString(cast(bytes, memoryview(body)[len(MAGIC) :]))
    except ProtoDecodeError as e:
        raise DecodeError(f"protobuf envelope (runtime.Unknown) does not parse: {e}") from e
    if not unknown.typeMeta.kind:
        raise DecodeError(
            f"protobuf envelope names no kind (apiVersion {unknown.typeMeta.apiVersion!r}, "
            f"{len(unknown.raw)} raw bytes)"
        )
    if unknown.contentEncoding:
        raise DecodeError(
            f"{unknown.typeMeta.kind}: unsupported contentEncoding {unknown.contentEncoding!r}"
        )
    return Envelope(
        api_version=unknown.typeMeta.apiVersion,
        kind=unknown.typeMeta.kind,
        raw=unknown.raw,
    )


def encode_envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """``k8s\\x00`` + ``runtime.Unknown`` around an already serialized object."""
    from ant.kube.proto import runtime_pb2

    unknown = runtime_pb2.Unknown(
        typeMeta=runtime_pb2.TypeMeta(apiVersion=api_version, kind=kind),
        raw=raw,
        # Go always writes these (non-pointer fields); do the same.
        contentEncoding="",
        contentType="",
    )
    return MAGIC + unknown.SerializeToString()


# --- registry ------------------------------------------------------------------------


def message_class(api_version: str, kind: str) -> type[Message]:
    """The generated class for a kind; ``DecodeError`` when ant does not know it."""
    key = (api_version, kind)
    cls = _classes.get(key)
    if cls is not None:
        return cls
    entry = KINDS.get(key)
    if entry is None:
        raise DecodeError(f"no protobuf type registered for apiVersion {api_version!r} {kind!r}")
    module = importlib.import_module(f"ant.kube.proto.{entry[0]}")
    cls = cast("type[Message]", getattr(module, entry[1]))
    _classes[key] = cls
    return cls


def _parse(cls: type[M], raw: bytes, what: str) -> M:
    from google.protobuf.message import DecodeError as ProtoDecodeError

    try:
        return cls.FromString(raw)
    except ProtoDecodeError as e:
        raise DecodeError(f"{what}: invalid protobuf: {e}") from e


def decode(body: bytes) -> Message:
    """Decode a protobuf body into the generated class its envelope names."""
    return decode_envelope_object(decode_envelope(body))


def decode_envelope_object(env: Envelope) -> Message:
    """Decode an envelope's raw bytes into the generated class its kind names."""
    cls = message_class(env.api_version, env.kind)
    return _parse(cls, env.raw, f"{env.api_version} {env.kind}")


def encode(msg: Message, api_version: str, kind: str) -> bytes:
    """A protobuf request body for ``msg``."""
    return encode_envelope(api_version, kind, msg.SerializeToString())


# --- Status --------------------------------------------------------------------------


STATUS_FULL_NAME = "k8s.io.apimachinery.pkg.apis.meta.v1.Status"


def map_dict(field: Mapping[str, str]) -> dict[str, str]:
    """A protobuf map field (labels, annotations) copied into a dict. Not ``dict(field)``:
    upb's map is a ``collections.abc.Mapping``, whose keys ``dict()`` walks in Python,
    1.5 times slower (a list of thousands of StatefulSets copies two maps each)."""
    return {k: field[k] for k in field}


def status_from_message(msg: Message) -> Status:
    """The fields of a ``meta.v1.Status`` message that callers act on.

    Takes what ``decode`` returns; ``DecodeError`` when it is not a Status.
    """
    if msg.DESCRIPTOR.full_name != STATUS_FULL_NAME:
        raise DecodeError(f"expected a Status, got {msg.DESCRIPTOR.full_name}")
    status = cast("meta_v1_pb2.Status", msg)
    details = status.details
    return Status(
        code=status.code,
        reason=status.reason,
        message=status.message,
        name=details.name,
        kind=details.kind,
        retry_after_seconds=details.retryAfterSeconds,
        causes=tuple(
            StatusCause(field=c.field, reason=c.reason, message=c.message) for c in details.causes
        ),
    )


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def status_from_json(obj: Mapping[str, Any]) -> Status:
    """The same from a JSON ``Status`` body (already parsed); missing fields are empty."""
    details = obj.get("details")
    if not isinstance(details, Mapping):
        details = {}
    causes = details.get("causes")
    return Status(
        code=_int(obj, "code"),
        reason=_str(obj, "reason"),
        message=_str(obj, "message"),
        name=_str(details, "name"),
        kind=_str(details, "kind"),
        retry_after_seconds=_int(details, "retryAfterSeconds"),
        causes=tuple(
            StatusCause(
                field=_str(c, "field"), reason=_str(c, "reason"), message=_str(c, "message")
            )
            for c in (causes if isinstance(causes, list) else [])
            if isinstance(c, Mapping)
        ),
    )


# --- watch ---------------------------------------------------------------------------


def iter_watch_frames(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a watch response body into frames (4-byte big-endian length + payload).

    Chunk boundaries may fall anywhere, including inside a length prefix. A stream that
    ends between frames simply ends; one that ends inside a frame raises ``DecodeError``
    after every complete frame has been yielded (callers treat it as a dropped
    connection). A length above ``MAX_WATCH_FRAME`` raises ``DecodeError`` at once.
    """
    buf = bytearray()
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        pos = 0
        while len(buf) - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if size > MAX_WATCH_FRAME:
                prefix = bytes(buf[pos : pos + 4])
                raise DecodeError(
                    f"watch frame of {size} bytes (prefix {prefix!r}) exceeds the "
                    f"{MAX_WATCH_FRAME}-byte limit: corrupt stream, or not a protobuf watch?"
                )
            end = pos + 4 + size
            if end > len(buf):
                break
            yield bytes(buf[pos + 4 : end])
            pos = end
        if pos:
            del buf[:pos]
    if buf:
        if len(buf) < 4:
            raise DecodeError(f"watch stream ended inside a frame's length ({len(buf)} of 4 bytes)")
        size = int.from_bytes(buf[:4], "big")
        raise DecodeError(
            f"watch stream ended inside a frame ({len(buf) - 4} of {size} bytes received)"
        )


def decode_watch_event(frame: bytes) -> tuple[str, Envelope]:
    """A frame's event type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) and object.

    The object stays an ``Envelope``: pass its bytes on or decode it with
    ``message_class(env.api_version, env.kind).FromString(env.raw)``; an ERROR event's
    object is a ``Status``.
    """
    from google.protobuf.message import DecodeError as ProtoDecodeError

    from ant.kube.proto import meta_v1_pb2

    try:
        event = meta_v1_pb2.WatchEvent.FromString(frame)
    except ProtoDecodeError as e:
        raise DecodeError(f"watch event does not parse: {e}") from e
    if not event.type:
        raise DecodeError(f"watch event has no type ({_describe(frame)})")
    try:
        env = decode_envelope(event.object.raw)
    except DecodeError as e:
        raise DecodeError(f"watch {event.type} event: {e}") from e
    return event.type, env


# --- backend -------------------------------------------------------------------------

# Whether check_upb has run in this process (a list so no `global` is needed).
_upb_checked: list[bool] = []


def backend() -> str:
    """The protobuf runtime in use: "upb" (fast, the default), "python" or "cpp"."""
    from google.protobuf.internal import api_implementation

    return api_implementation.Type()


def check_upb() -> str | None:
    """A warning for the CLI to show when protobuf is not using upb; only the first time.

    None when the backend is upb, and on every call after the first.
    """
    if _upb_checked:
        return None
    _upb_checked.append(True)
    kind = backend()
    if kind == "upb":
        return None
    return (
        f"protobuf is using its {kind!r} backend, which decodes many times slower than "
        "'upb'; unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION or reinstall protobuf "
        "(pip install --force-reinstall protobuf) to get a binary wheel"
    )
