"""ant.cache.store: stripping, indexes, generations, relist diffs, resourceVersion waits."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ant.cache.freshness import SETTLE
from ant.cache.selectors import parse_fields, parse_labels
from ant.cache.store import KINDS, LAST_APPLIED, Entry, Store, Strip, Table, make_entry
from ant.kube.convert import to_message
from tests.unit.test_cache_auth import Clock


def sts(name: str, ns: str = "research", rv: str = "1", **labels: str) -> Any:
    from ant.kube.proto import apps_v1_pb2

    return to_message(
        {
            "metadata": {
                "name": name,
                "namespace": ns,
                "resourceVersion": rv,
                "labels": labels,
                "annotations": {LAST_APPLIED: "{...}" * 100, "keep": "me"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {
                "replicas": 1,
                "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A"}]}]}},
            },
        },
        apps_v1_pb2.StatefulSet,
    )


def table(name: str = "statefulsets", scopes: tuple[str, ...] = ("",)) -> Table:
    return Table(KINDS[name], threading.Condition(), scopes)


def put(t: Table, *objs: Any, strip: Strip | None = None) -> None:
    for obj in objs:
        t.upsert(make_entry(t.kind, obj, strip or Strip()))


def names(entries: list[Any]) -> list[str]:
    return [f"{e.namespace}/{e.name}" for e in entries]


def test_entries_are_stripped_and_serialized_once() -> None:
    kind = KINDS["statefulsets"]
    entry = make_entry(kind, sts("a", job="a"), Strip())
    decoded = kind.message_class().FromString(entry.raw)
    assert not decoded.metadata.managedFields
    assert dict(decoded.metadata.annotations) == {"keep": "me"}
    assert entry.labels == {"job": "a"}
    assert len(entry.raw) < 400


def test_configured_fields_and_annotations_are_stripped() -> None:
    kind = KINDS["statefulsets"]
    strip = Strip(
        annotations=frozenset({LAST_APPLIED, "keep"}),
        fields={"statefulsets": ("spec.template.spec.containers.env",), "*": ("spec.nothing",)},
    )
    decoded = kind.message_class().FromString(make_entry(kind, sts("a"), strip).raw)
    assert not decoded.metadata.annotations
    assert decoded.spec.template.spec.containers[0].name == "c"
    assert not decoded.spec.template.spec.containers[0].env


def test_select_by_namespace_labels_and_fields() -> None:
    t = table()
    put(
        t,
        sts("a", "research", **{"ant.dev/created-by": "alice", "team": "nlp"}),
        sts("b", "research", **{"ant.dev/created-by": "bob"}),
        sts("c", "other", **{"ant.dev/created-by": "alice"}),
    )
    assert names(t.select("research")[0]) == ["research/a", "research/b"]
    assert names(t.select(None)[0]) == ["other/c", "research/a", "research/b"]
    mine = parse_labels("ant.dev/created-by=alice")
    assert names(t.select(None, mine)[0]) == ["other/c", "research/a"]
    assert names(t.select("research", mine)[0]) == ["research/a"]
    assert names(t.select(None, parse_labels("team!=nlp"))[0]) == ["other/c", "research/b"]
    by_name = parse_fields("metadata.name=b", t.kind.supported_fields)
    assert names(t.select(None, None, by_name)[0]) == ["research/b"]


def test_label_index_follows_updates_and_deletes() -> None:
    t = table()
    put(t, sts("a", rv="1", **{"ant.dev/created-by": "alice"}))
    put(t, sts("a", rv="2", **{"ant.dev/created-by": "bob"}))
    assert t.select(None, parse_labels("ant.dev/created-by=alice"))[0] == []
    assert names(t.select(None, parse_labels("ant.dev/created-by=bob"))[0]) == ["research/a"]
    t.delete(make_entry(t.kind, sts("a", rv="3"), Strip()))
    assert t.count == 0
    assert t.by_label["ant.dev/created-by"] == {}
    assert t.rv == 3


def test_generations_move_per_namespace() -> None:
    t = table()
    put(t, sts("a", "x"), sts("b", "y"))
    x, y, everything = t.version("x"), t.version("y"), t.version(None)
    put(t, sts("a", "x", rv="5"))
    assert t.version("x") != x
    assert t.version("y") == y
    assert t.version(None) != everything


def test_replace_removes_phantoms_and_adds_what_was_missed() -> None:
    t = table()
    put(t, sts("keep", rv="1"), sts("gone", rv="2"), sts("changed", rv="3"))
    fresh = [sts("keep", rv="1"), sts("changed", rv="9"), sts("missed", rv="8")]
    changed, removed = t.replace([make_entry(t.kind, o, Strip()) for o in fresh], "10")
    assert (changed, removed) == (2, 1)
    assert names(t.select(None)[0]) == ["research/changed", "research/keep", "research/missed"]
    assert t.rv == 10
    assert t.synced


def test_replace_of_one_namespace_scope_leaves_the_others() -> None:
    t = table(scopes=("x", "y"))
    t.replace([make_entry(t.kind, sts("a", "x"), Strip())], "5", "x")
    assert not t.synced
    t.replace([make_entry(t.kind, sts("b", "y"), Strip())], "7", "y")
    assert t.synced
    assert t.rv == 5  # the lowest scope: everything up to 5 is in, everywhere
    assert (t.rv_for("y"), t.rv_for(None)) == (7, 5)  # a read of y needs only y's progress
    t.replace([], "8", "x")
    assert names(t.select(None)[0]) == ["y/b"]
    assert (t.rv, t.rv_for("x")) == (7, 8)
    assert t.select("x")[1] == "8"


def test_wait_for_blocks_until_a_table_reaches_the_resource_version() -> None:
    store = Store([KINDS["statefulsets"], KINDS["pods"]])
    t = store.table("statefulsets")
    t.bookmark("5")
    store.table("pods").bookmark("100")
    assert store.wait_for(["statefulsets"], 5, 0.01)
    assert not store.wait_for(["statefulsets"], 6, 0.05)

    def later() -> None:
        time.sleep(0.1)
        put(t, sts("a", rv="7"))

    threading.Thread(target=later).start()
    started = time.monotonic()
    assert store.wait_for(["statefulsets"], 7, 5.0)
    assert time.monotonic() - started < 2.0


def test_store_scope_and_ignored_namespaces() -> None:
    assert Store(ignored=["kube-system"]).holds("research")
    assert not Store(ignored=["kube-system"]).holds("kube-system")
    assert Store(ignored=["kube-system"]).holds(None)
    scoped = Store(namespaces=["a", "b"])
    assert scoped.holds("a")
    assert not scoped.holds("c")
    assert not scoped.holds(None)
    assert scoped.scopes(KINDS["pods"]) == ("a", "b")
    assert scoped.scopes(KINDS["nodes"]) == ("",)


def test_pod_and_event_fields_are_selectable() -> None:
    from ant.kube.proto import core_v1_pb2

    pods = table("pods")
    pod = to_message(
        {
            "metadata": {"name": "p", "namespace": "n", "resourceVersion": "1"},
            "spec": {"nodeName": "node-1"},
            "status": {"phase": "Running"},
        },
        core_v1_pb2.Pod,
    )
    put(pods, pod)
    running = parse_fields("status.phase!=Failed,spec.nodeName=node-1", pods.kind.supported_fields)
    assert names(pods.select(None, None, running)[0]) == ["n/p"]
    events = table("events")
    event = to_message(
        {
            "metadata": {"name": "e", "namespace": "n", "resourceVersion": "2"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Preempted",
        },
        core_v1_pb2.Event,
    )
    put(events, event)
    preempted = parse_fields(
        "reason=Preempted,involvedObject.kind=Pod", events.kind.supported_fields
    )
    assert names(events.select("n", None, preempted)[0]) == ["n/e"]


def test_json_of_an_entry_is_kubernetes_json() -> None:
    import json

    t = table()
    put(t, sts("a", x="y"))
    doc = json.loads(t.get("research", "a").json(t.kind))  # type: ignore[union-attr]
    assert doc["metadata"]["name"] == "a"
    assert doc["metadata"]["labels"] == {"x": "y"}
    assert "managedFields" not in doc["metadata"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_message_class(kind: str) -> None:
    assert KINDS[kind].message_class().DESCRIPTOR.name == KINDS[kind].resource.kind


def test_staleness_counts_from_the_last_moment_the_table_was_current() -> None:
    clock = Clock()
    t = Store([KINDS["statefulsets"]], clock=clock).table("statefulsets")
    t.replace([], "10")
    t.freshness.opened("")
    clock.now += 600
    assert t.freshness.staleness() == 0  # a working watch: current however quiet the resource
    t.freshness.closed("")  # the API server went away
    clock.now += 3
    assert t.freshness.staleness() == 3
    t.freshness.opened("")  # back, but the watch is refused at once (410): no news yet
    clock.now += 0.1
    t.freshness.closed("")
    clock.now += 2
    assert t.freshness.staleness() == pytest.approx(5.1)  # still from the first close
    t.replace([], "20")  # the relist: current again
    assert t.freshness.staleness() == 0
    t.freshness.opened("")
    clock.now += 0.5
    t.freshness.closed("")  # the watch ends (e.g. the server's timeout) ...
    t.freshness.opened("")  # ... and the next one is accepted at once
    clock.now += 0.5
    assert t.freshness.staleness() == pytest.approx(0.5)  # not yet known to work
    clock.now += SETTLE
    assert t.freshness.staleness() == 0  # open long enough without an error
    t.freshness.closed("")
    clock.now += 1
    t.bookmark("21")  # news from the server
    assert t.freshness.staleness() == 0


def test_a_table_is_as_stale_as_its_stalest_scope() -> None:
    clock = Clock()
    store = Store([KINDS["statefulsets"], KINDS["pods"]], namespaces=["a", "b"], clock=clock)
    sts_table = store.table("statefulsets")
    for scope in ("a", "b"):
        sts_table.replace([], "1", scope)
        sts_table.freshness.opened(scope)
    clock.now += 5
    sts_table.freshness.closed("b")
    clock.now += 7
    assert sts_table.freshness.staleness() == 7
    assert store.stale(["statefulsets", "pods"], 5) == {"statefulsets": 7}
    assert store.stale(["statefulsets"], 7) == {}


def test_offer_keeps_only_a_newer_copy_and_never_moves_the_table() -> None:
    table = Store([KINDS["statefulsets"]]).table("statefulsets")
    table.replace([_sts_entry("a", "5")], "10")
    assert not table.offer(_sts_entry("a", "4"))  # older than stored
    assert not table.offer(_sts_entry("b", "12"))  # not stored: maybe deleted meanwhile
    assert table.offer(_sts_entry("a", "11"))
    got = table.get("ns", "a")
    assert got is not None
    assert got.rv == "11"
    assert table.resource_version == "10"


def _sts_entry(name: str, rv: str) -> Entry:
    from ant.kube.proto import apps_v1_pb2

    msg = apps_v1_pb2.StatefulSet()
    msg.metadata.name, msg.metadata.namespace, msg.metadata.resourceVersion = name, "ns", rv
    return make_entry(KINDS["statefulsets"], msg, Strip())
