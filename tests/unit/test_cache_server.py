"""ant.cache.server: routes, auth decisions, encodings, the job endpoint, read-your-writes.

The store is filled directly; TokenReview and SubjectAccessReview are answered by a
scripted API server (an oracle that reads each review), so the decisions go through the
real Authenticator/Authorizer code. The same paths against the real API server are in
tests/integration/test_cache.py.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ant.cache.auth import Authenticator, Authorizer
from ant.cache.metrics import Registry
from ant.cache.server.app import CacheApp
from ant.cache.server.listener import serve
from ant.cache.server.wire import Reply, Request, negotiate
from ant.cache.store import KINDS, Store, Strip, make_entry
from ant.cache.tls import self_signed, server_context
from ant.jobs.documents import job_list
from ant.jobs.model import jobs_from
from ant.kube import codec
from ant.kube.auth import NoAuth, StaticAuth
from ant.kube.client import Client
from ant.kube.convert import to_message
from ant.kube.transport import RetryPolicy, Transport
from tests.unit.scripted_server import ScriptedServer, respond, scripted_server

TOKENS = {"alice-token": "alice", "bob-token": "bob", "admin-token": "admin"}
# (user, namespace) pairs allowed to read; admin reads everything.
ALLOWED = {("alice", "research"), ("bob", "research"), ("bob", "bob-private")}


def oracle(server: ScriptedServer) -> Any:
    """Answers TokenReviews from TOKENS and SubjectAccessReviews from ALLOWED."""
    from ant.kube.proto import authentication_v1_pb2 as authn
    from ant.kube.proto import authorization_v1_pb2 as authz

    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        request: Any = codec.decode(server.seen[-1].body)
        if isinstance(request, authn.TokenReview):
            user = TOKENS.get(request.spec.token)
            review = authn.TokenReview()
            review.status.authenticated = user is not None
            if user:
                review.status.user.username = user
            body = codec.encode(review, "authentication.k8s.io/v1", "TokenReview")
        else:
            spec = request.spec
            ns = spec.resourceAttributes.namespace
            decision = authz.SubjectAccessReview()
            decision.status.allowed = spec.user == "admin" or (spec.user, ns) in ALLOWED
            body = codec.encode(decision, "authorization.k8s.io/v1", "SubjectAccessReview")
        respond(201, body, codec.PROTOBUF)(h)

    return reply


def statefulset(name: str, ns: str, user: str, rv: str = "1", **labels: str) -> Any:
    from ant.kube.proto import apps_v1_pb2

    job_labels = {
        "ant.dev/managed-by": "ant",
        "ant.dev/job": name,
        "ant.dev/created-by": user,
        "ant.dev/priority": "normal",
        **labels,
    }
    return to_message(
        {
            "metadata": {
                "name": name,
                "namespace": ns,
                "resourceVersion": rv,
                "creationTimestamp": "2026-11-24T10:00:00Z",
                "labels": job_labels,
                "annotations": {"ant.dev/description": f"{name} by {user}"},
            },
            "spec": {"replicas": 2},
            "status": {"updateRevision": f"{name}-r1"},
        },
        apps_v1_pb2.StatefulSet,
    )


def pod(job: str, ns: str, user: str, index: int, node: str = "n1") -> Any:
    from ant.kube.proto import core_v1_pb2

    return to_message(
        {
            "metadata": {
                "name": f"{job}-{index}",
                "namespace": ns,
                "resourceVersion": "2",
                "labels": {
                    "ant.dev/managed-by": "ant",
                    "ant.dev/job": job,
                    "ant.dev/created-by": user,
                    "controller-revision-hash": f"{job}-r1",
                },
            },
            "spec": {"nodeName": node},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
        core_v1_pb2.Pod,
    )


@pytest.fixture
def store() -> Store:
    store = Store()
    sts, pods = store.table("statefulsets"), store.table("pods")
    objects = [
        (sts, statefulset("a-train", "research", "alice", team="nlp")),
        (sts, statefulset("b-train", "research", "bob")),
        (sts, statefulset("secret", "bob-private", "bob")),
        (pods, pod("a-train", "research", "alice", 0)),
        (pods, pod("a-train", "research", "alice", 1, node="n2")),
        (pods, pod("b-train", "research", "bob", 0)),
    ]
    for table, obj in objects:
        table.upsert(make_entry(table.kind, obj, Strip()))
    for table in store.tables.values():
        table.replace(list(_entries(table)), "100")
    return store


def _entries(table: Any) -> Iterator[Any]:
    for names in table.by_namespace.values():
        yield from names.values()


@pytest.fixture
def app(store: Store) -> Iterator[CacheApp]:
    with scripted_server() as server:
        server.replies += [oracle(server)] * 200
        client = Client(Transport(server.url, auth=NoAuth(), retry=RetryPolicy(attempts=1)))
        yield CacheApp(store, Authenticator(client), Authorizer(client), Registry(), rv_wait=0.2)


def get(app: CacheApp, target: str, token: str | None = "alice-token", accept: str = "") -> Reply:
    headers = {"accept": accept or codec.PROTOBUF}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return app.handle(Request("GET", target, headers))


def status_of(reply: Reply) -> Any:
    if reply.content_type == codec.PROTOBUF:
        return codec.decode(reply.body)
    return json.loads(reply.body)


def test_no_token_or_a_wrong_one_is_401(app: CacheApp) -> None:
    for token in (None, "wrong"):
        reply = get(app, "/api/v1/namespaces/research/pods", token=token)
        assert reply.status == 401
        assert status_of(reply).code == 401


def test_a_namespace_the_caller_cannot_read_is_403(app: CacheApp) -> None:
    reply = get(app, "/apis/apps/v1/namespaces/bob-private/statefulsets")
    assert reply.status == 403
    assert 'User "alice" cannot list resource "statefulsets.apps"' in status_of(reply).message
    assert get(app, "/apis/apps/v1/namespaces/bob-private/statefulsets/secret").status == 403
    assert get(app, "/apis/apps/v1/statefulsets").status == 403  # cluster-wide
    assert get(app, "/apis/apps/v1/namespaces/bob-private/statefulsets", "bob-token").status == 200


def test_lists_in_protobuf_and_json(app: CacheApp) -> None:
    reply = get(app, "/api/v1/namespaces/research/pods")
    assert (reply.status, reply.content_type) == (200, codec.PROTOBUF)
    pods: Any = codec.decode(reply.body)
    assert [p.metadata.name for p in pods.items] == ["a-train-0", "a-train-1", "b-train-0"]
    assert pods.metadata.resourceVersion == "100"
    as_json = get(app, "/api/v1/namespaces/research/pods", accept="application/json")
    doc = json.loads(as_json.body)
    assert (doc["kind"], doc["apiVersion"]) == ("PodList", "v1")
    assert [p["metadata"]["name"] for p in doc["items"]] == ["a-train-0", "a-train-1", "b-train-0"]
    everything = codec.decode(get(app, "/apis/apps/v1/statefulsets", "admin-token").body)
    assert len(everything.items) == 3  # type: ignore[attr-defined]


def test_selectors_and_get(app: CacheApp) -> None:
    target = "/apis/apps/v1/namespaces/research/statefulsets?labelSelector=team%3Dnlp"
    found: Any = codec.decode(get(app, target).body)
    assert [s.metadata.name for s in found.items] == ["a-train"]
    target = "/api/v1/namespaces/research/pods?fieldSelector=spec.nodeName%3Dn2"
    assert [p.metadata.name for p in codec.decode(get(app, target).body).items] == ["a-train-1"]  # type: ignore[attr-defined]
    bad = get(app, "/api/v1/namespaces/research/pods?fieldSelector=spec.bogus%3Dx")
    assert bad.status == 400
    one: Any = codec.decode(get(app, "/apis/apps/v1/namespaces/research/statefulsets/b-train").body)
    assert one.metadata.name == "b-train"
    reply = get(
        app, "/apis/apps/v1/namespaces/research/statefulsets/b-train", accept="application/json"
    )
    doc = json.loads(reply.body)
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]["name"]) == (
        "StatefulSet",
        "apps/v1",
        "b-train",
    )
    assert get(app, "/apis/apps/v1/namespaces/research/statefulsets/nope").status == 404


def test_content_negotiation() -> None:
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    assert negotiate(table) == "application/json"
    assert negotiate("application/vnd.kubernetes.protobuf, application/json") == codec.PROTOBUF
    assert negotiate("application/yaml") is None
    assert negotiate("") == "application/json"
    assert negotiate("*/*") == "application/json"


def test_unsupported_requests(app: CacheApp) -> None:
    assert get(app, "/api/v1/namespaces/research/pods", accept="application/yaml").status == 406
    assert get(app, "/api/v1/namespaces/research/pods?watch=true").status == 405
    assert get(app, "/api/v1/namespaces/research/secrets").status == 404
    assert get(app, "/apis/batch/v1/jobs").status == 404
    post = app.handle(Request("POST", "/api/v1/namespaces/research/pods", {}))
    assert post.status == 401  # authentication first: a stranger learns nothing more
    alice = {"authorization": "Bearer alice-token"}
    post = app.handle(Request("POST", "/api/v1/namespaces/research/pods", alice))
    assert post.status == 405
    with_body = app.handle(
        Request("GET", "/api/v1/namespaces/research/pods", {**alice, "content-length": "5"})
    )
    assert (with_body.status, status_of(with_body)["reason"]) == (413, "RequestEntityTooLarge")


def test_job_endpoint_rows_are_ant_lists(app: CacheApp, store: Store) -> None:
    from ant.cache.client import decode_jobs

    reply = get(app, "/ant/v1/namespaces/research/jobs?mine=true")
    jobs = decode_jobs(reply.body)
    assert [(j.name, j.user, j.status.value, j.ready, j.replicas, j.nodes) for j in jobs] == [
        ("a-train", "alice", "Running", 2, 2, 2)
    ]
    assert jobs[0].description == ""  # the table view leaves it out
    everyone = decode_jobs(get(app, "/ant/v1/namespaces/research/jobs?view=full").body)
    assert [j.name for j in everyone] == ["a-train", "b-train"]
    assert everyone[0].labels == {"team": "nlp"}
    assert everyone[0].description == "a-train by alice"
    # JSON: exactly `ant list -o json`'s document, from the same model code.
    sts = [store.table("statefulsets").get("research", n) for n in ("a-train", "b-train")]
    pods = store.table("pods").select("research")[0]
    kind_s, kind_p = KINDS["statefulsets"], KINDS["pods"]
    expected = job_list(
        jobs_from(
            [kind_s.message_class().FromString(e.raw) for e in sts if e],
            [kind_p.message_class().FromString(e.raw) for e in pods],
        )
    )
    as_json = get(app, "/ant/v1/namespaces/research/jobs", accept="application/json")
    assert json.loads(as_json.body) == expected
    bobs = "/ant/v1/namespaces/research/jobs?user=bob&status="
    assert decode_jobs(get(app, bobs + "pending").body) == []  # 1 pod of 2: Partial
    assert [j.name for j in decode_jobs(get(app, bobs + "Partial,Running").body)] == ["b-train"]
    assert get(app, "/ant/v1/namespaces/research/jobs?status=bogus").status == 400
    assert get(app, "/ant/v1/namespaces/bob-private/jobs").status == 403
    assert get(app, "/ant/v1/jobs").status == 403
    assert len(decode_jobs(get(app, "/ant/v1/jobs", "admin-token").body)) == 3


def test_answers_are_reused_until_the_tables_change(app: CacheApp, store: Store) -> None:
    target = "/ant/v1/namespaces/research/jobs?mine=true"
    first = get(app, target)
    assert get(app, target).body is first.body
    assert app.metrics.responses.get("hit") == 1
    table = store.table("statefulsets")
    table.upsert(make_entry(table.kind, statefulset("a2", "research", "alice", rv="101"), Strip()))
    from ant.cache.client import decode_jobs

    assert [j.name for j in decode_jobs(get(app, target).body)] == ["a-train", "a2"]


def test_read_your_writes_waits_then_times_out(app: CacheApp, store: Store) -> None:
    target = "/ant/v1/namespaces/research/jobs?mine=true&resourceVersion="
    assert get(app, target + "100").status == 200
    started = time.monotonic()
    late = get(app, target + "150")
    assert late.status == 504
    assert late.headers["Retry-After"] == "1"
    assert 0.15 < time.monotonic() - started < 2
    table = store.table("statefulsets")

    def write() -> None:
        time.sleep(0.05)
        table.upsert(
            make_entry(table.kind, statefulset("new", "research", "alice", rv="150"), Strip())
        )

    threading.Thread(target=write).start()
    from ant.cache.client import decode_jobs

    assert "new" in [j.name for j in decode_jobs(get(app, target + "150").body)]
    assert get(app, "/api/v1/namespaces/research/pods?resourceVersion=abc").status == 400


def test_not_synced_is_503_and_readyz_says_so(app: CacheApp) -> None:
    assert get(app, "/readyz", token=None).status == 200
    app.store.table("pods").unsynced.add("")
    assert get(app, "/readyz", token=None).status == 503
    reply = get(app, "/api/v1/namespaces/research/pods")
    assert (reply.status, reply.headers["Retry-After"]) == (503, "1")
    assert get(app, "/livez", token=None).status == 200


def test_namespaces_outside_the_watched_scope_are_refused(app: CacheApp) -> None:
    app.store.ignored = frozenset({"kube-system"})
    assert get(app, "/api/v1/namespaces/kube-system/pods", "admin-token").status == 400
    assert get(app, "/api/v1/nodes", "admin-token").status == 200


def test_metrics_need_authorization_and_parse(app: CacheApp) -> None:
    assert get(app, "/metrics", "alice-token").status == 403
    get(app, "/api/v1/namespaces/research/pods")
    reply = get(app, "/metrics", "admin-token", accept="text/plain")
    assert reply.status == 200
    text = reply.body.decode()
    assert 'ant_cache_requests_total{endpoint="list pods",code="200"} 1' in text
    sample = re.compile(
        r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]+="[^"]*"(,[a-zA-Z_]+="[^"]*")*\})? \S+$'
    )
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


def test_discovery_for_kubectl(app: CacheApp) -> None:
    resources = json.loads(get(app, "/api/v1", accept="application/json").body)["resources"]
    assert {r["name"] for r in resources} == {"pods", "services", "nodes", "events"}
    apps = json.loads(get(app, "/apis/apps/v1", accept="application/json").body)
    assert [r["name"] for r in apps["resources"]] == ["statefulsets"]
    assert get(app, "/apis", token=None).status == 401


def test_served_over_tls_to_ants_own_client(app: CacheApp, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, ["127.0.0.1", "localhost"])
    listener = serve(app, "127.0.0.1", 0, server_context(cert, key))
    try:
        url = f"https://127.0.0.1:{listener.port}"
        client = Client(Transport(url, auth=StaticAuth(token="alice-token"), verify=cert))
        from ant.kube import resources as r

        pods = client.list(r.PODS, "research", label_selector="ant.dev/job=a-train")
        assert [p.metadata.name for p in pods.items] == ["a-train-0", "a-train-1"]
        assert client.get(r.STATEFULSETS, "a-train", "research").metadata.name == "a-train"
        again = client.list(r.PODS, "research")  # the same kept-alive connection
        assert len(again.items) == 3
        client.transport.close()
    finally:
        listener.close()
    assert self_signed(tmp_path, ["127.0.0.1"]) == (cert, key)  # reused while it fits


def test_a_table_staler_than_the_promise_is_refused_and_readyz_says_so(app: CacheApp) -> None:
    pods = app.store.table("pods")
    pods.freshness.closed("")  # the API server went away ...
    down = pods.freshness.down_since[""]
    assert down is not None
    pods.freshness.down_since[""] = down - 2 * app.max_staleness  # ... longer than promised
    ready = get(app, "/readyz", token=None)
    assert (ready.status, ready.headers["Retry-After"]) == (503, "1")
    assert re.search(rb"stale \(over 5s\): pods for 1\ds", ready.body), ready.body
    for target in ("/api/v1/namespaces/research/pods", "/ant/v1/namespaces/research/jobs"):
        reply = get(app, target)
        assert (reply.status, reply.headers["Retry-After"]) == (503, "1"), target
        assert "read from the API server" in status_of(reply).message
    assert get(app, "/apis/apps/v1/namespaces/research/statefulsets").status == 200
    pods.bookmark("101")  # the watch is back
    assert get(app, "/readyz", token=None).status == 200
    assert get(app, "/api/v1/namespaces/research/pods").status == 200


def test_capacity_is_node_totals_for_who_may_list_nodes(app: CacheApp, store: Store) -> None:
    from ant.kube.proto import core_v1_pb2

    nodes, pods = store.table("nodes"), store.table("pods")
    for name in ("n1", "n2"):
        node = to_message(
            {
                "metadata": {"name": name, "resourceVersion": "3"},
                "status": {
                    "allocatable": {"google.com/tpu": "4", "cpu": "64"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            core_v1_pb2.Node,
        )
        nodes.upsert(make_entry(nodes.kind, node, Strip()))
    secret = pod("hidden", "bob-private", "bob", 0, node="n2")
    secret.spec.containers.add(name="main").resources.requests["google.com/tpu"].string = "4"
    pods.upsert(make_entry(pods.kind, secret, Strip()))

    assert get(app, "/ant/v1/capacity").status == 403  # alice may not list nodes here
    reply = get(app, "/ant/v1/capacity", "admin-token", accept="application/json")
    assert reply.status == 200, reply.body
    assert json.loads(reply.body) == {
        "apiVersion": "ant.dev/v1",
        "kind": "NodeCapacity",
        "nodes": [
            {"name": "n1", "ready": True, "allocatable": {"cpu": 64, "google.com/tpu": 4},
             "requested": {}},
            {"name": "n2", "ready": True, "allocatable": {"cpu": 64, "google.com/tpu": 4},
             "requested": {"google.com/tpu": 4}},
        ],
    }  # fmt: skip
    assert b"hidden" not in reply.body
    assert b"bob-private" not in reply.body
