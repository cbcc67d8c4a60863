"""Transport and client behaviour under faults, against a scripted HTTP server."""

from __future__ import annotations

import json
import logging
import struct
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ant.errors import (
    ConnectError,
    ExitCode,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from ant.kube import codec
from ant.kube import resources as r
from ant.kube.auth import ExecAuth, NoAuth, StaticAuth
from ant.kube.client import Client
from ant.kube.config import Cluster, ExecConfig
from ant.kube.transport import RetryPolicy, Transport
from ant.kube.watch import Backoff, follow, watch_until
from tests.unit.scripted_server import ScriptedServer, respond, scripted_server, stream


@pytest.fixture
def server():
    with scripted_server() as s:
        yield s


def transport(server: ScriptedServer, delays: list[float], **kw) -> Transport:
    kw.setdefault("auth", NoAuth())
    kw.setdefault("retry", RetryPolicy(attempts=4))
    return Transport(server.url, sleep=delays.append, **kw)


def status_body(code: int, reason: str, message: str, **details) -> bytes:
    from ant.kube.proto import meta_v1_pb2

    s = meta_v1_pb2.Status(code=code, reason=reason, message=message, status="Failure")
    for cause in details.pop("causes", []):
        s.details.causes.add(**cause)
    for k, v in details.items():
        setattr(s.details, k, v)
    return codec.encode(s, "v1", "Status")


def pod(name: str, rv: str):
    from ant.kube.proto import core_v1_pb2

    p = core_v1_pb2.Pod()
    p.metadata.name = name
    p.metadata.resourceVersion = rv
    return p


def frame(event_type: str, obj, kind: str = "Pod", api_version: str = "v1") -> bytes:
    from ant.kube.proto import meta_v1_pb2

    ev = meta_v1_pb2.WatchEvent(type=event_type)
    ev.object.raw = codec.encode(obj, api_version, kind)
    data = ev.SerializeToString()
    return struct.pack(">I", len(data)) + data


def query(seen_path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(seen_path).query).items()}


def test_429_is_retried_after_the_servers_retry_after(server):
    delays: list[float] = []
    server.replies += [
        respond(
            429, status_body(429, "TooManyRequests", "slow down"), codec.PROTOBUF, Retry_After="2"
        ),
        respond(200, b"{}", "application/json"),
    ]
    resp = transport(server, delays).request("POST", "/api/v1/namespaces/x/pods", body=b"{}")
    assert resp.status == 200
    assert len(server.seen) == 2
    assert delays
    assert delays[0] >= 2


def test_429_gives_up_with_exit_code_6_after_the_last_attempt(server):
    server.replies += [respond(429, b"", Retry_After="1")] * 4
    with pytest.raises(TooManyRequests) as e:
        transport(server, []).request("GET", "/api/v1/pods")
    assert e.value.exit_code is ExitCode.UNAVAILABLE
    assert e.value.retry_after == 1
    assert len(server.seen) == 4


def test_5xx_is_retried_for_reads_but_not_for_creates(server):
    server.replies += [respond(503, b"busy", "text/plain"), respond(200, b"{}")]
    assert transport(server, []).request("GET", "/api/v1/pods").status == 200
    assert len(server.seen) == 2

    server.seen.clear()
    server.replies += [respond(500, b"boom", "text/plain"), respond(200, b"{}")]
    with pytest.raises(ServerError, match="boom"):
        transport(server, []).request("POST", "/api/v1/namespaces/x/pods", body=b"{}")
    assert len(server.seen) == 1, "a create that may have happened must not be repeated"


def hang_up(h) -> None:
    """No answer at all: the connection is closed (an API server being killed)."""
    h.close_connection = True
    h.connection.shutdown(2)


def test_a_403_right_after_the_server_was_unreachable_is_retried(server):
    """A restarted API server answers 403 until its authorizer has loaded RBAC: after a
    dropped connection, that 403 is tried again, even for a create (it was refused)."""
    forbidden = status_body(403, "Forbidden", 'pods is forbidden: User "alice" cannot create')
    server.replies += [hang_up, respond(403, forbidden, codec.PROTOBUF), respond(200, b"{}")]
    t = transport(server, [])
    assert t.request("GET", "/api/v1/pods").status == 200
    assert len(server.seen) == 3
    server.replies += [respond(403, forbidden, codec.PROTOBUF), respond(201, b"{}")]
    assert t.request("POST", "/api/v1/namespaces/x/pods", body=b"{}").status == 201
    assert len(server.seen) == 5

    # However many attempts the outage took, its 403s are tried again until the grace ends.
    server.seen.clear()
    server.replies += [hang_up] * 3 + [respond(403, forbidden, codec.PROTOBUF)] * 6
    server.replies += [respond(200, b"{}")]
    assert transport(server, []).request("GET", "/api/v1/pods").status == 200
    assert len(server.seen) == 10

    # A policy of one attempt (the cache's, completion's) never tries again.
    server.seen.clear()
    server.replies += [hang_up, respond(403, forbidden, codec.PROTOBUF)]
    once = transport(server, [], retry=RetryPolicy(attempts=1))
    with pytest.raises(ConnectError):
        once.request("GET", "/api/v1/pods")
    with pytest.raises(Forbidden):
        once.request("GET", "/api/v1/pods")
    assert len(server.seen) == 2

    # A 403 with no outage behind it is an answer: raised at once.
    server.seen.clear()
    server.replies += [respond(403, forbidden, codec.PROTOBUF), respond(200, b"{}")]
    with pytest.raises(Forbidden):
        transport(server, []).request("GET", "/api/v1/pods")
    assert len(server.seen) == 1


def test_the_command_engine_sends_a_request_without_requests_or_the_idna_codec(server):
    """Start-up: the ant command's engine imports neither ``requests`` (~40 ms) nor the
    IDNA codec (~20 ms, pulled in by a ``str`` host name given to getaddrinfo or ssl)."""
    import subprocess

    server.replies.append(respond(200, b"{}"))
    code = (
        "import sys\n"
        "from ant.kube.auth import NoAuth\n"
        "from ant.kube.transport import Transport\n"
        f"t = Transport({server.url!r}, auth=NoAuth(), stdlib_http=True)\n"
        "print(t.request('GET', '/api').status)\n"
        "print(sorted(m for m in ('requests', 'encodings.idna', 'stringprep') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("\n")[:2] == ["200", "[]"], done.stdout + done.stderr


def test_protobuf_status_becomes_not_found_with_exit_code_3(server):
    server.replies.append(
        respond(
            404,
            status_body(404, "NotFound", 'pods "p" not found', name="p", kind="pods"),
            codec.PROTOBUF,
        )
    )
    with pytest.raises(NotFound) as e:
        Client(transport(server, [])).get(r.PODS, "p", "x")
    assert e.value.exit_code is ExitCode.NOT_FOUND
    assert e.value.status.name == "p"
    assert str(e.value) == 'pods "p" not found'


def test_json_status_invalid_keeps_field_causes(server):
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": 'StatefulSet "x" is invalid: spec.replicas: Invalid',
        "details": {
            "causes": [
                {"field": "spec.replicas", "reason": "FieldValueInvalid", "message": "must be >= 0"}
            ]
        },
    }
    server.replies.append(respond(422, json.dumps(body).encode()))
    with pytest.raises(Invalid) as e:
        transport(server, []).request("POST", "/apis/apps/v1/namespaces/x/statefulsets")
    assert e.value.exit_code is ExitCode.USAGE
    assert e.value.status.causes[0].field == "spec.replicas"


def test_an_error_page_from_a_proxy_still_gives_one_line(server):
    server.replies += [respond(502, b"<html>\n<h1>Bad gateway</h1>\n</html>", "text/html")] * 4
    with pytest.raises(ServerError) as e:
        transport(server, []).request("GET", "/api/v1/pods")
    assert "\n" not in str(e.value)
    assert e.value.status.code == 502


def test_connection_refused_is_connect_error_exit_code_6():
    delays: list[float] = []
    t = Transport(
        "http://127.0.0.1:9", auth=NoAuth(), retry=RetryPolicy(attempts=3), sleep=delays.append
    )
    with pytest.raises(ConnectError, match=r"cannot reach 127\.0\.0\.1:9: .*refused") as e:
        t.request("POST", "/api/v1/pods", body=b"{}")
    assert e.value.exit_code is ExitCode.UNAVAILABLE
    assert len(delays) == 2, "a refused connection sent nothing, so even a POST is retried"


def test_every_request_says_who_it_is_and_asks_for_protobuf(server):
    server.replies.append(respond(200, b"{}"))
    transport(server, [], auth=StaticAuth(token="sekrit")).request("GET", "/version")
    headers = server.seen[0].headers
    assert headers["User-Agent"].startswith("ant/")
    assert headers["Accept"] == "application/vnd.kubernetes.protobuf, application/json"
    assert headers["Authorization"] == "Bearer sekrit"


def test_tokens_never_reach_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG, logger="ant")
    server.replies += [respond(401, b"", "text/plain")]
    auth = StaticAuth(token="sekrit-token-value")
    with pytest.raises(Unauthorized) as e:
        transport(server, [], auth=auth).request("GET", "/api/v1/pods")
    assert "sekrit" not in caplog.text
    assert "sekrit" not in str(e.value)
    assert "sekrit" not in repr(auth)


def exec_plugin(tmp_path: Path) -> ExecConfig:
    """A credential plugin that hands out token-1, token-2, ... on successive runs."""
    script = tmp_path / "plugin.py"
    counter = tmp_path / "runs"
    script.write_text(
        textwrap.dedent(f"""
        import json, pathlib, sys
        c = pathlib.Path({str(counter)!r})
        n = int(c.read_text()) + 1 if c.exists() else 1
        c.write_text(str(n))
        json.dump({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                   "status": {{"token": f"token-{{n}}"}}}}, sys.stdout)
    """)
    )
    return ExecConfig(command=sys.executable, args=(str(script),))


def test_a_401_reruns_the_exec_plugin_once_and_retries(server, tmp_path):
    server.replies += [respond(401, b"", "text/plain"), respond(200, b"{}")]
    auth = ExecAuth(exec_plugin(tmp_path), Cluster(server=server.url))
    transport(server, [], auth=auth).request("GET", "/api/v1/pods")
    tokens = [s.headers["Authorization"] for s in server.seen]
    assert tokens == ["Bearer token-1", "Bearer token-2"]


def test_a_second_401_is_final(server, tmp_path):
    server.replies += [respond(401, b"", "text/plain")] * 3
    auth = ExecAuth(exec_plugin(tmp_path), Cluster(server=server.url))
    with pytest.raises(Unauthorized):
        transport(server, [], auth=auth).request("GET", "/api/v1/pods")
    assert len(server.seen) == 2


@pytest.mark.parametrize(("code", "error"), [(401, Unauthorized), (403, Forbidden)])
def test_a_final_denial_is_reported_before_it_is_raised(server, code, error):
    server.replies += [respond(code, status_body(code, error.__name__, "no")), respond(200, b"{}")]
    denied: list[int] = []
    t = transport(server, [])
    t.on_denied = lambda: denied.append(len(server.seen))
    with pytest.raises(error):
        t.request("GET", "/api/v1/pods")
    assert denied == [1]
    t.request("GET", "/api/v1/pods")  # a success reports nothing
    assert denied == [1]


def test_list_follows_continue_and_restarts_when_the_token_expires(server):
    from ant.kube.proto import core_v1_pb2

    def page(names: list[str], rv: str, cont: str = "") -> bytes:
        lst = core_v1_pb2.PodList()
        lst.metadata.resourceVersion = rv
        setattr(lst.metadata, "continue", cont)
        for n in names:
            lst.items.append(pod(n, rv))
        return codec.encode(lst, "v1", "PodList")

    server.replies += [
        respond(200, page(["a", "b"], "10", "tok1"), codec.PROTOBUF),
        respond(410, status_body(410, "Expired", "continue token expired"), codec.PROTOBUF),
        respond(200, page(["a", "b"], "20", "tok2"), codec.PROTOBUF),
        respond(200, page(["c"], "20"), codec.PROTOBUF),
    ]
    result = Client(transport(server, [])).list(r.PODS, "x", limit=2)
    assert [p.metadata.name for p in result.items] == ["a", "b", "c"]
    assert result.resource_version == "20"
    assert [query(s.path).get("continue") for s in server.seen] == [None, "tok1", None, "tok2"]


def test_watch_resumes_from_the_last_resource_version_after_a_dropped_connection(server):
    pw = codec.PROTOBUF_WATCH
    server.replies += [
        stream([frame("ADDED", pod("a", "11")), frame("MODIFIED", pod("a", "12"))], pw, drop=True),
        stream([frame("BOOKMARK", pod("", "15")), frame("DELETED", pod("a", "16"))], pw),
    ]
    stop = threading.Event()
    client = Client(transport(server, []))
    events = []
    for ev in follow(client, r.PODS, "10", "x", stop=stop, backoff=Backoff(initial=0.01)):
        events.append((ev.type, ev.resource_version))
        if ev.type == "DELETED":
            stop.set()
    assert events == [("ADDED", "11"), ("MODIFIED", "12"), ("BOOKMARK", "15"), ("DELETED", "16")]
    assert [query(s.path)["resourceVersion"] for s in server.seen] == ["10", "12"]
    assert query(server.seen[0].path)["allowWatchBookmarks"] == "true"


def test_a_410_in_a_watch_is_raised_for_the_caller_to_relist(server):
    from ant.kube.proto import meta_v1_pb2

    status = meta_v1_pb2.Status(code=410, reason="Expired", message="too old resource version")
    server.replies.append(stream([frame("ERROR", status, "Status")], codec.PROTOBUF_WATCH))
    with pytest.raises(Gone) as e:
        list(follow(Client(transport(server, [])), r.PODS, "1", "x"))
    assert "too old" in str(e.value)


def test_watch_until_relists_after_a_410_and_resumes_from_the_fresh_list(server):
    from ant.kube.proto import meta_v1_pb2

    gone = meta_v1_pb2.Status(code=410, reason="Expired", message="too old resource version")
    pw = codec.PROTOBUF_WATCH
    server.replies += [
        stream([frame("ADDED", pod("a", "11")), frame("ERROR", gone, "Status")], pw),
        stream([frame("MODIFIED", pod("b", "21"))], pw),
    ]
    seen: list[str] = []
    relists: list[str] = []

    def on_event(ev) -> bool:
        seen.append(ev.object.metadata.name)
        return ev.object.metadata.name == "b"

    def relist() -> tuple[str, bool]:
        relists.append("relist")
        return "20", False

    client = Client(transport(server, []))
    assert watch_until(client, r.PODS, "10", on_event, relist, 5.0, "x")
    assert seen == ["a", "b"]
    assert relists == ["relist"]
    assert [query(s.path)["resourceVersion"] for s in server.seen] == ["10", "20"]


def test_watch_until_gives_up_at_its_deadline_when_nothing_happens(server):
    import time

    def quiet_watch(h) -> None:
        # Like the API server: no event, then the stream ends after timeoutSeconds.
        h.send_response(200)
        h.send_header("Content-Type", codec.PROTOBUF_WATCH)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        time.sleep(float(query(h.path)["timeoutSeconds"]))
        h.wfile.write(b"0\r\n\r\n")

    server.replies += [quiet_watch] * 3
    client = Client(transport(server, []))
    started = time.monotonic()
    held = watch_until(client, r.PODS, "10", lambda ev: True, lambda: ("10", False), 0.5, "x")
    assert not held
    assert time.monotonic() - started < 3
    assert query(server.seen[0].path)["timeoutSeconds"] == "1"


def test_a_stream_cut_mid_frame_is_a_transport_error(server):
    half = frame("ADDED", pod("a", "11"))[:-3]
    server.replies.append(stream([half], codec.PROTOBUF_WATCH, drop=True))
    with pytest.raises(TransportError):
        list(Client(transport(server, [])).watch(r.PODS, "x", resource_version="10"))


def test_kubeconfig_proxy_url_routes_requests_through_the_proxy(server):
    """The scripted server plays the proxy: it receives the absolute URL."""
    server.replies.append(respond(200, b"{}"))
    t = Transport("http://cluster.invalid:6443", auth=NoAuth(), proxy_url=server.url)
    t.request("GET", "/api/v1/namespaces")
    assert server.seen[0].path == "http://cluster.invalid:6443/api/v1/namespaces"
