"""ant.cache.informer against a scripted API server: the reflector's list/watch/relist rules.

A real 410 and a real API server restart are in tests/integration/test_cache.py; here the
server is scripted so that every step of the sequence is checked request by request.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ant.cache.informer import Informer, field_selector
from ant.cache.store import KINDS, Store
from ant.kube import codec
from ant.kube.auth import NoAuth
from ant.kube.client import Client
from ant.kube.transport import RetryPolicy, Transport
from ant.kube.watch import Backoff
from tests.helpers import wait_for
from tests.unit.scripted_server import respond, scripted_server, stream


def sts(name: str, rv: str) -> Any:
    from ant.kube.proto import apps_v1_pb2

    obj = apps_v1_pb2.StatefulSet()
    obj.metadata.name, obj.metadata.namespace, obj.metadata.resourceVersion = name, "ns", rv
    obj.metadata.managedFields.add().manager = "kubectl"
    return obj


def sts_list(rv: str, *items: Any, more: str = "") -> Any:
    """A list (page) at ``rv``; ``more``: the continue token for the next page."""
    from ant.kube.proto import apps_v1_pb2

    msg = apps_v1_pb2.StatefulSetList(items=list(items))
    msg.metadata.resourceVersion = rv
    setattr(msg.metadata, "continue", more)
    return respond(200, codec.encode(msg, "apps/v1", "StatefulSetList"), codec.PROTOBUF)


def next_page(page: Any) -> Any:
    """``page``, after the API server's check of a continue request (else its 422)."""

    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        asked = query(h)
        if "continue" not in asked:
            respond(400, b'{"kind":"Status","code":400,"message":"expected a continue"}')(h)
        elif {"resourceVersion", "resourceVersionMatch"} & set(asked):
            message = b"resourceVersionMatch is forbidden when continue is provided"
            respond(
                422, b'{"kind":"Status","code":422,"reason":"Invalid","message":"%s"}' % message
            )(h)
        else:
            page(h)

    return reply


def frame(event_type: str, raw: bytes) -> bytes:
    from ant.kube.proto import meta_v1_pb2, runtime_pb2

    event = meta_v1_pb2.WatchEvent(type=event_type, object=runtime_pb2.RawExtension(raw=raw))
    body = event.SerializeToString()
    return len(body).to_bytes(4, "big") + body


def obj_frame(event_type: str, obj: Any) -> bytes:
    return frame(event_type, codec.encode(obj, "apps/v1", "StatefulSet"))


def gone_frame() -> bytes:
    from ant.kube.proto import meta_v1_pb2

    status = meta_v1_pb2.Status(status="Failure", code=410, reason="Expired")
    status.message = "too old resource version: 1 (15)"
    return frame("ERROR", codec.encode(status, "v1", "Status"))


def gone_reply() -> Any:
    return respond(
        410, b'{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}'
    )


def query(seen: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(seen.path).query).items()}


def names(store: Store) -> dict[str, str]:
    entries, _ = store.table("statefulsets").select(None)
    return {e.name: e.rv for e in entries}


def run_until(informer: Informer, server: Any, what: str, done: Callable[[], bool]) -> None:
    """Run the informer until ``done()`` holds and every scripted reply was taken."""
    thread = threading.Thread(target=informer.run, daemon=True)
    thread.start()
    try:
        wait_for(
            what,
            lambda: not server.replies and done(),
            timeout=10,
            state=lambda: (len(server.replies), [e.name for e in informer.table.select(None)[0]]),
            every=0.02,
        )
    finally:
        informer.stop.set()
        thread.join(5)


def test_list_watch_resume_and_relist_after_gone() -> None:
    watch = f"{codec.PROTOBUF_WATCH}"
    store = Store([KINDS["statefulsets"]])
    with scripted_server() as server:
        server.replies += [
            # 1. the initial, consistent list
            sts_list("10", sts("a", "5"), sts("b", "6")),
            # 2. watch from 10: an add and a bookmark, then the server ends it normally
            stream(
                [obj_frame("ADDED", sts("c", "11")), obj_frame("BOOKMARK", sts("", "12"))], watch
            ),
            # 3. watch again from 12 (not 10): the connection drops mid-stream
            stream([obj_frame("MODIFIED", sts("a", "13"))], watch, drop=True),
            # 4. after a backoff, from 13: the resourceVersion has been compacted away
            stream([gone_frame()], watch),
            # 5. relist "not older than" 13: refused too
            gone_reply(),
            # 6. then a consistent list: b was deleted and d created while we weren't looking
            sts_list("20", sts("a", "13"), sts("c", "11"), sts("d", "19")),
            # 7. and watch from 20
            stream([obj_frame("DELETED", sts("c", "21"))], watch),
        ]
        client = Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))
        informer = Informer(
            client,
            store.table("statefulsets"),
            store.strip,
            ignored=("kube-system",),
            watch_timeout=5,
            backoff=Backoff(initial=0.01, cap=0.02),
        )
        table = store.table("statefulsets")
        run_until(
            informer,
            server,
            "the relisted table at resourceVersion 21",
            lambda: names(store) == {"a": "13", "d": "19"} and table.rv == 21,
        )
    requests = [query(s) for s in server.seen[:7]]
    assert requests[0].get("resourceVersion") is None
    assert requests[0]["fieldSelector"] == "metadata.namespace!=kube-system"
    assert requests[0]["limit"] == "500"
    assert [r.get("resourceVersion") for r in requests[1:4]] == ["10", "12", "13"]
    assert all(r["watch"] == "true" and r["allowWatchBookmarks"] == "true" for r in requests[1:4])
    assert (requests[4]["resourceVersion"], requests[4]["resourceVersionMatch"]) == (
        "13",
        "NotOlderThan",
    )
    assert requests[5].get("resourceVersion") is None
    assert requests[6]["resourceVersion"] == "20"
    assert names(store) == {"a": "13", "d": "19"}
    assert store.table("statefulsets").rv == 21
    entry = store.table("statefulsets").get("ns", "a")
    assert entry is not None
    assert not KINDS["statefulsets"].message_class().FromString(entry.raw).metadata.managedFields


def test_a_relist_not_older_than_the_last_version_is_used_when_the_server_has_it() -> None:
    store = Store([KINDS["statefulsets"]])
    with scripted_server() as server:
        server.replies += [
            sts_list("10", sts("a", "5")),
            stream([gone_frame()], codec.PROTOBUF_WATCH),
            sts_list("30", sts("z", "29")),
        ]
        client = Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))
        informer = Informer(
            client, store.table("statefulsets"), store.strip, backoff=Backoff(0.01, 0.02)
        )
        run_until(
            informer, server, "the second list in the table", lambda: names(store) == {"z": "29"}
        )
    assert query(server.seen[2])["resourceVersionMatch"] == "NotOlderThan"
    assert names(store) == {"z": "29"}
    assert informer.lists == 2


def test_namespace_scoped_informers_use_the_namespace_path() -> None:
    store = Store([KINDS["statefulsets"]], namespaces=["team-a"])
    with scripted_server() as server:
        server.replies += [sts_list("1")]
        client = Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))
        informer = Informer(client, store.table("statefulsets"), store.strip, scope="team-a")
        informer.relist()
    assert server.seen[0].path.startswith("/apis/apps/v1/namespaces/team-a/statefulsets?")
    assert "fieldSelector" not in query(server.seen[0])
    assert store.table("statefulsets").synced


def test_field_selector_for_ignored_namespaces() -> None:
    assert field_selector([]) is None
    assert field_selector(["b", "a"]) == "metadata.namespace!=a,metadata.namespace!=b"


def test_a_relist_of_several_pages_sends_only_limit_and_continue_after_the_first() -> None:
    """After a 410, the first page asks "not older than" the last seen version; the next
    pages carry only limit and continue (the token pins the snapshot), as the API server
    requires (422 otherwise, which once made the cache retry the same relist forever)."""
    store = Store([KINDS["statefulsets"]])
    watch = codec.PROTOBUF_WATCH
    with scripted_server() as server:
        server.replies += [
            sts_list("10", sts("a", "5"), more="t1"),
            next_page(sts_list("10", sts("b", "6"))),
            stream([gone_frame()], watch),
            sts_list("30", sts("a", "25"), more="t2"),
            next_page(sts_list("30", sts("c", "29"))),
            stream([obj_frame("ADDED", sts("d", "31"))], watch),
        ]
        client = Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))
        table = store.table("statefulsets")
        informer = Informer(client, table, store.strip, backoff=Backoff(0.01, 0.02))
        run_until(
            informer,
            server,
            "the two-page relist and the watch after it",
            lambda: names(store) == {"a": "25", "c": "29", "d": "31"},
        )
    requests = [query(s) for s in server.seen[:6]]
    assert requests[3] == {
        "limit": "500",
        "resourceVersion": "10",
        "resourceVersionMatch": "NotOlderThan",
    }
    assert requests[4] == {"limit": "500", "continue": "t2"}
    assert requests[5]["resourceVersion"] == "30"
    assert informer.lists == 2
