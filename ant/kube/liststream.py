"""A protobuf list body decoded item by item while it arrives, never held whole.

A list body is ``k8s\\x00`` + ``runtime.Unknown`` (1 typeMeta, 2 raw, 3 contentEncoding,
4 contentType) whose ``raw`` is the list message (1 ``ListMeta`` metadata, 2 repeated
items). ``codec.decode`` needs the whole body, then copies ``raw`` out of it, then builds
every item at once: about three times the body in memory. Here the framing is walked by
hand over the chunks as they come, and each item is decoded on its own the moment its
last byte is in: memory holds one chunk and one item, plus whatever the caller keeps.

Pure: no I/O (the chunks come from the transport), no printing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ant.errors import DecodeError
from ant.kube import codec

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = ["ListReader"]

_LEN = 2  # the wire type of strings, bytes and embedded messages


class _Bytes:
    """The body so far: what the chunks delivered, minus what was already taken."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = bytearray()
        self._pos = 0
        self.offset = 0  # bytes taken since the start of the body

    def _fill(self, n: int) -> bool:
        """Whether ``n`` bytes are available (False: the body ended first)."""
        while len(self._buf) - self._pos < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            if self._pos:  # drop what was taken before growing: the buffer stays small
                del self._buf[: self._pos]
                self._pos = 0
            self._buf += chunk
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def take(self, n: int) -> bytes:
        if not self._fill(n):
            raise DecodeError(
                f"list body ended early: {n} bytes wanted at offset {self.offset}, "
                f"{len(self._buf) - self._pos} left"
            )
        with memoryview(self._buf) as view:  # one copy, not a slice and then bytes of it
            out = bytes(view[self._pos : self._pos + n])
        self._pos += n
        self.offset += n
        return out

    def varint(self) -> int:
        self._fill(10)  # a varint is at most 10 bytes; fewer are fine at the very end
        buf, pos, value, shift = self._buf, self._pos, 0, 0
        while True:
            if pos >= len(buf) or shift > 63:
                raise DecodeError(f"list body: bad varint at offset {self.offset}")
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        self.offset += pos - self._pos
        self._pos = pos
        return value

    def skip(self, wire_type: int) -> None:
        if wire_type == 0:
            self.varint()
        elif wire_type == 1:
            self.take(8)
        elif wire_type == _LEN:
            self.take(self.varint())
        elif wire_type == 5:
            self.take(4)
        else:
            raise DecodeError(f"list body: unexpected wire type {wire_type} at {self.offset}")


class ListReader:
    """Reads one protobuf list body; ``items`` yields its decoded items in order.

    Once ``items`` is exhausted, ``kind`` (e.g. ``StatefulSetList``), ``api_version``,
    ``resource_version`` and ``continue_token`` hold what the body said.
    """

    def __init__(self) -> None:
        self.api_version = ""
        self.kind = ""
        self.resource_version = ""
        self.continue_token = ""
        self._item_class: type[Message] | None = None

    def items(self, chunks: Iterable[bytes]) -> Iterator[Any]:
        body = _Bytes(chunks)
        if body.at_end():
            raise DecodeError("not a Kubernetes protobuf body: got an empty body")
        magic = body.take(len(codec.MAGIC))
        if magic != codec.MAGIC:
            raise DecodeError(
                f"not a Kubernetes protobuf body (no {codec.MAGIC!r} prefix): starts {magic!r}"
            )
        while not body.at_end():  # the fields of runtime.Unknown
            field, wire_type = _tag(body)
            if wire_type != _LEN:
                body.skip(wire_type)
            elif field == 1:
                self._type_meta(body.take(body.varint()))
            elif field == 2:
                yield from self._list(body, body.varint())
            elif field == 3:
                if encoding := body.take(body.varint()):
                    raise DecodeError(f"{self.kind}: unsupported contentEncoding {encoding!r}")
            else:
                body.skip(wire_type)

    def _type_meta(self, raw: bytes) -> None:
        from ant.kube.proto import runtime_pb2

        meta = runtime_pb2.TypeMeta.FromString(raw)
        self.api_version, self.kind = meta.apiVersion, meta.kind
        if not self.kind.endswith("List"):
            raise DecodeError(f"expected a list, got {self.api_version} {self.kind}")
        self._item_class = codec.message_class(self.api_version, self.kind.removesuffix("List"))

    def _list(self, body: _Bytes, size: int) -> Iterator[Any]:
        from google.protobuf.message import DecodeError as ProtoDecodeError

        from ant.kube.proto import meta_v1_pb2

        cls = self._item_class
        if cls is None:
            raise DecodeError("protobuf list body: its items come before its kind")
        end = body.offset + size
        while body.offset < end:
            field, wire_type = _tag(body)
            if wire_type != _LEN:
                body.skip(wire_type)
                continue
            raw = body.take(body.varint())
            try:
                if field == 2:
                    yield cls.FromString(raw)
                elif field == 1:
                    meta = meta_v1_pb2.ListMeta.FromString(raw)
                    self.resource_version = meta.resourceVersion
                    self.continue_token = getattr(meta, "continue")
            except ProtoDecodeError as e:
                raise DecodeError(f"{self.api_version} {self.kind}: invalid protobuf: {e}") from e
        if body.offset != end:
            raise DecodeError(f"{self.kind}: an item runs past the end of the list")


def _tag(body: _Bytes) -> tuple[int, int]:
    tag = body.varint()
    return tag >> 3, tag & 7
