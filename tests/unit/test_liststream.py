"""ant.kube.liststream: a list body decoded item by item, however its chunks fall."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ant.errors import DecodeError
from ant.kube import codec
from ant.kube.liststream import ListReader
from ant.kube.proto import apps_v1_pb2, core_v1_pb2, meta_v1_pb2, runtime_pb2


def statefulset_list(n: int) -> apps_v1_pb2.StatefulSetList:
    body = apps_v1_pb2.StatefulSetList()
    body.metadata.resourceVersion = "4711"
    for i in range(n):
        sts = body.items.add()
        sts.metadata.name = f"job-{i}"
        sts.metadata.annotations["ant.dev/description"] = "x" * (i * 37 % 300)
        sts.spec.replicas = i % 5
    return body


LIST = statefulset_list(40)
BODY = codec.encode(LIST, "apps/v1", "StatefulSetList")


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(cuts)), len(body)]
    return [body[a:b] for a, b in pairwise(edges)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(BODY) - 1), max_size=40))
def test_every_split_of_the_body_gives_the_items_codec_decode_gives(cuts: list[int]) -> None:
    reader = ListReader()
    items = list(reader.items(split(BODY, cuts)))
    assert items == list(codec.decode(BODY).items)  # type: ignore[attr-defined]
    assert (reader.kind, reader.api_version, reader.resource_version) == (
        "StatefulSetList",
        "apps/v1",
        "4711",
    )


def test_one_byte_chunks_and_an_empty_list() -> None:
    assert len(list(ListReader().items([bytes([b]) for b in BODY]))) == 40
    empty = codec.encode(core_v1_pb2.PodList(), "v1", "PodList")
    assert list(ListReader().items([empty])) == []


def test_items_come_out_before_the_body_has_ended() -> None:
    """The join can start while the list still arrives: item 0 is decoded from the first
    chunks alone."""
    half = BODY[: len(BODY) // 2]
    items = ListReader().items([half])
    assert next(items).metadata.name == "job-0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b'{"kind": "StatefulSetList"}', "no b'k8s\\x00' prefix"),
        (BODY[:-30], "ended early"),
        (codec.encode(LIST.items[0], "apps/v1", "StatefulSet"), "expected a list"),
        (
            codec.MAGIC
            + runtime_pb2.Unknown(
                typeMeta=runtime_pb2.TypeMeta(apiVersion="v1", kind="PodList"),
                raw=b"",
                contentEncoding="gzip",
            ).SerializeToString(),
            "unsupported contentEncoding",
        ),
        (
            codec.encode_envelope("v1", "PodList", b"\x12\x03abc"),
            "invalid protobuf",
        ),
    ],
)
def test_a_bad_body_is_one_decode_error(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message.replace("\\", "\\\\").replace("'", ".")):
        list(ListReader().items([body]))


def test_kinds_ant_has_no_item_class_for_are_refused() -> None:
    body = codec.encode_envelope("v1", "WidgetList", meta_v1_pb2.ListMeta().SerializeToString())
    with pytest.raises(DecodeError, match="no protobuf type registered"):
        list(ListReader().items([body]))
