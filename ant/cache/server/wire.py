"""Wire format: requests and replies, content negotiation, list and Status bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ant.cache.store import Entry, Kind
from ant.errors import ApiError, Status, api_error
from ant.kube import codec

PROTOBUF = codec.PROTOBUF
JSON = codec.JSON


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: Mapping[str, str]  # lower-case names

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def has_body(self) -> bool:
        """Whether a body follows the headers (the cache never reads one)."""
        return self.header("content-length").strip() not in ("", "0") or bool(
            self.header("transfer-encoding")
        )


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: str = "other"


def failure(code: int, reason: str, message: str, retry_after: int = 0) -> ApiError:
    """The ``ApiError`` the cache answers with: this Status, in the caller's format."""
    return api_error(Status(code, reason, message, retry_after_seconds=retry_after))


# --- content negotiation ---------------------------------------------------------------


def negotiate(accept: str) -> str | None:
    """PROTOBUF or JSON, the first the Accept header allows in its order; None: 406.

    Media types with an ``as=`` conversion (Table, PartialObjectMetadata) are not
    served: a client listing them first gets the next one it accepts, as from the API
    server for types it cannot convert.
    """
    if not accept.strip():
        return JSON
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        options = dict(p.partition("=")[::2] for p in params)
        if "as" in options or options.get("q") in ("0", "0.0"):
            continue
        if media == PROTOBUF and options.get("stream") is None:
            return PROTOBUF
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def list_protobuf(kind: Kind, entries: Sequence[Entry], rv: str) -> bytes:
    """``<Kind>List{metadata{resourceVersion}, items}`` from the items' stored bytes.

    Field 1 (ListMeta, whose field 2 is resourceVersion) and repeated field 2 (items)
    are length-delimited: writing them directly skips decoding and re-encoding every
    object.
    """
    rv_bytes = rv.encode()
    meta = b"\x12" + _varint(len(rv_bytes)) + rv_bytes
    parts = [b"\x0a", _varint(len(meta)), meta]
    for entry in entries:
        parts += (b"\x12", _varint(len(entry.raw)), entry.raw)
    return codec.encode_envelope(kind.resource.api_version, kind.list_kind, b"".join(parts))


def list_json(kind: Kind, entries: Sequence[Entry], rv: str) -> bytes:
    head = (
        f'{{"kind":"{kind.list_kind}","apiVersion":"{kind.resource.api_version}",'
        f'"metadata":{{"resourceVersion":{json.dumps(rv)}}},"items":['
    ).encode()
    return head + b",".join(e.json(kind) for e in entries) + b"]}"


def status_body(status: Status, fmt: str) -> bytes:
    if fmt == PROTOBUF:
        from ant.kube.proto import meta_v1_pb2

        message = meta_v1_pb2.Status(
            metadata=meta_v1_pb2.ListMeta(),
            status="Failure",
            message=status.message,
            reason=status.reason,
            code=status.code,
        )
        if status.retry_after_seconds:
            message.details.retryAfterSeconds = status.retry_after_seconds
        return codec.encode(message, "v1", "Status")
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": status.message,
        "reason": status.reason,
        "code": status.code,
    }
    if status.retry_after_seconds:
        doc["details"] = {"retryAfterSeconds": status.retry_after_seconds}
    return json.dumps(doc).encode()
