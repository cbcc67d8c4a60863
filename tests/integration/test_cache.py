"""ant cache serve against the dev cluster: the same answers as the API server, the same
refusals, read-your-writes, and convergence after an API server crash and a forced 410.

The cache runs as a real process (``python -m ant cache serve``) with the credentials of
a ServiceAccount that has exactly the rights deploy/cache.yaml gives it (list/watch of
what it caches, system:auth-delegator), watching one test namespace and bob-private.
ant itself runs in process as alice and bob (``ant --cache URL ...``). What the cache
answers is compared with what the API server answers for the same user.

The last two tests restart the shared API server: they run last in this module and wait
until it is ready again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import yaml

from ant.errors import ExitCode, Forbidden, ServerError
from ant.kube import resources as r
from ant.kube.auth import StaticAuth
from ant.kube.client import Client, connect
from ant.kube.transport import Transport
from tests.helpers import Result, run_ant, wait_for
from tests.unit.test_cache_metrics import parse as parse_metrics

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "cache.yaml"
CACHED = (r.STATEFULSETS, r.PODS, r.SERVICES, r.EVENTS)
MAX_STALENESS = 2  # the cache's promise (--max-staleness), short so outages show quickly


# ---- the cache process ---------------------------------------------------------------------


@dataclass
class CacheProcess:
    url: str
    ca: Path
    proc: subprocess.Popen[bytes]
    log: Path
    namespace: str

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def get(self, path: str, token: str | None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(
            self.url + path, params=params, headers=headers, verify=str(self.ca), timeout=10
        )

    def client(self, token: str) -> Client:
        return Client(Transport(self.url, auth=StaticAuth(token=token), verify=str(self.ca)))

    def metrics(self, token: str) -> dict[str, Any]:
        resp = self.get("/metrics", token)
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_metrics(resp.text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_account_kubeconfig(devcluster: DevCluster, namespace: str, path: Path) -> None:
    """A ServiceAccount with deploy/cache.yaml's ClusterRole and bindings; its kubeconfig."""
    from kubernetes import client

    docs = [d for d in yaml.safe_load_all(DEPLOY.read_text()) if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    suffix = namespace
    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        rbac = client.RbacAuthorizationV1Api(api)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "ant-cache"}})
        rbac.create_cluster_role(
            {"metadata": {"name": f"ant-cache-{suffix}"}, "rules": role["rules"]}
        )
        for name, role_name in (
            (f"ant-cache-{suffix}", f"ant-cache-{suffix}"),
            (f"ant-cache-delegator-{suffix}", "system:auth-delegator"),
        ):
            rbac.create_cluster_role_binding(
                {
                    "metadata": {"name": name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": role_name,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "ant-cache", "namespace": namespace}
                    ],
                }
            )
        token = core.create_namespaced_service_account_token(
            "ant-cache", namespace, {"spec": {"expirationSeconds": 7200}}
        ).status.token
    ca = base64.b64encode(devcluster.ca.read_bytes()).decode()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "dev",
                        "cluster": {"server": devcluster.server, "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": "ant-cache", "user": {"token": token}}],
                "contexts": [
                    {"name": "ant-cache", "context": {"cluster": "dev", "user": "ant-cache"}}
                ],
                "current-context": "ant-cache",
            }
        )
    )


def _delete_rbac(devcluster: DevCluster, suffix: str) -> None:
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        for name in (f"ant-cache-{suffix}", f"ant-cache-delegator-{suffix}"):
            with contextlib.suppress(client.ApiException):
                rbac.delete_cluster_role_binding(name)
        with contextlib.suppress(client.ApiException):
            rbac.delete_cluster_role(f"ant-cache-{suffix}")


@pytest.fixture(scope="module")
def cache_ns(devcluster: DevCluster) -> Iterator[str]:
    """A namespace of this module's own, with the researcher RoleBinding."""
    from kubernetes import client

    name = f"tc-{uuid.uuid4().hex[:8]}"
    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        core.create_namespace(
            {"metadata": {"name": name, "labels": {"ant.dev/test-namespace": "true"}}}
        )
        client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
            name,
            {
                "metadata": {"name": "researchers"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": devcluster.info["researcher_clusterrole"],
                },
                "subjects": devcluster.info["researcher_subjects"],
            },
        )

        def has_default_sa() -> bool:
            sas = core.list_namespaced_service_account(name, field_selector="metadata.name=default")
            return bool(sas.items)

        wait_for("the default ServiceAccount", has_default_sa, 30)
        try:
            yield name
        finally:
            core.delete_namespace(name)


@pytest.fixture(scope="module")
def cache(
    devcluster: DevCluster, cache_ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CacheProcess]:
    work = tmp_path_factory.mktemp("ant-cache")
    kubeconfig = work / "kubeconfig"
    _service_account_kubeconfig(devcluster, cache_ns, kubeconfig)
    port = _free_port()
    log = work / "cache.log"
    argv = [
        sys.executable, "-m", "ant", "--kubeconfig", str(kubeconfig), "-v",
        "cache", "serve",
        "--listen", f"127.0.0.1:{port}",
        "--cert-dir", str(work / "certs"),
        "--namespaces", f"{cache_ns},bob-private",
        "--watch-timeout", "60",
        "--max-staleness", str(MAX_STALENESS),
        # The crash test reads through an outage with reviews cached before it; the default
        # 10 s can run out on a busy machine before the staleness refusal is checked.
        "--token-ttl", "300", "--authz-ttl", "300",
    ]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "NO_COLOR": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    process = CacheProcess(
        f"https://127.0.0.1:{port}", work / "certs" / "ant-cache.crt", proc, log, cache_ns
    )

    def ready() -> bool:
        assert proc.poll() is None, f"ant cache serve exited:\n{process.log_tail()}"
        try:
            return process.get("/readyz", None).status_code == 200
        except (requests.RequestException, OSError):  # OSError: no certificate yet
            return False

    try:
        wait_for("ant cache serve /readyz", ready, 60)
        yield process
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                code = proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait(5)
            assert code == 0, f"ant cache serve exited {code} on SIGTERM:\n{process.log_tail()}"
        _delete_rbac(devcluster, cache_ns)


# ---- ant, in process -------------------------------------------------------------------------


def ant(
    devcluster: DevCluster,
    *argv: str,
    user: str = "alice",
    cache: CacheProcess | None = None,
    home: Path | None = None,
) -> Result:
    args = ["--kubeconfig", str(devcluster.kubeconfig), "--context", user]
    vars = {"NO_COLOR": "1", "USER": "nobody"}
    if cache is not None:
        args += ["--cache", cache.url]
        vars["ANT_CACHE_CA"] = str(cache.ca)
    if home is not None:
        vars |= {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    return run_ant([*args, *argv], vars=vars, cwd=REPO)


def ok(devcluster: DevCluster, *argv: str, **kwargs: Any) -> Result:
    result = ant(devcluster, *argv, **kwargs)
    assert result.code == 0, f"ant {' '.join(argv)} -> {result.code}\n{result.out}\n{result.err}"
    return result


def submit(devcluster: DevCluster, ns: str, name: str, user: str = "alice", **kw: Any) -> Result:
    return ok(
        devcluster, "submit", "-n", ns, "--name", name, "--image", "busybox:1.36",
        "--replicas", "2", "--", "sleep", "1d", user=user, **kw,
    )  # fmt: skip


# ---- comparing with the API server -------------------------------------------------------------


Snapshot = dict[str, dict[tuple[str, str], str]]


def snapshot(client: Client, namespace: str) -> Snapshot:
    """Every cached kind in ``namespace`` (and every node): (namespace, name) -> resourceVersion."""
    out: Snapshot = {}
    for resource in CACHED:
        items = client.list(resource, namespace).items
        out[resource.plural] = {
            (o.metadata.namespace, o.metadata.name): o.metadata.resourceVersion for o in items
        }
    out["nodes"] = {
        ("", o.metadata.name): o.metadata.resourceVersion for o in client.list(r.NODES).items
    }
    return out


def converged(cache_client: Client, api: Client, namespace: str, timeout: float = 60.0) -> Snapshot:
    """Wait until the cache holds exactly what the API server does; the snapshot."""
    last: dict[str, Any] = {}

    def same() -> bool:
        truth = snapshot(api, namespace)
        try:
            seen = snapshot(cache_client, namespace)
        except ServerError as e:  # 503: not (yet) within its promise after an outage
            seen = {kind: {} for kind in truth}
            last.update(refused=str(e))
        last.update(truth=truth, seen=seen)
        return truth == seen

    try:
        wait_for("the cache to converge to the API server", same, timeout, every=0.5)
    except pytest.fail.Exception:
        print(f"the cache's last refusal: {last.get('refused')}")
        truth, seen = last["truth"], last["seen"]
        for kind in truth:
            lost = set(truth[kind]) - set(seen[kind])
            phantoms = set(seen[kind]) - set(truth[kind])
            stale = {
                k for k in set(truth[kind]) & set(seen[kind]) if truth[kind][k] != seen[kind][k]
            }
            if lost or phantoms or stale:
                print(
                    f"{kind}: lost {sorted(lost)} phantoms {sorted(phantoms)} stale {sorted(stale)}"
                )
        raise
    return last["truth"]


def ages(table: str) -> str:
    """A table with its AGE column blanked: two reads a second apart differ there."""
    return re.sub(r"(?<= )\d+[smhd](?= |$)", "<age>", table, flags=re.MULTILINE)


def token(devcluster: DevCluster, user: str) -> str:
    return devcluster.tokens[user]


# ---- the tests -------------------------------------------------------------------------------


def test_alice_sees_through_the_cache_exactly_what_the_api_server_shows(
    devcluster: DevCluster, cache: CacheProcess
) -> None:
    ns = cache.namespace
    submit(devcluster, ns, "seen-a")
    submit(devcluster, ns, "seen-b")
    submit(devcluster, ns, "seen-bob", user="bob")
    api = connect(str(devcluster.kubeconfig), "alice")
    through = cache.client(token(devcluster, "alice"))
    wait_for(
        "the jobs' pods",
        lambda: len([p for p in api.list(r.PODS, ns).items if p.status.phase == "Running"]) == 6,
    )
    truth = converged(through, api, ns)
    assert len(truth["statefulsets"]) == 3
    assert len(truth["pods"]) == 6
    assert truth["nodes"]

    # Objects byte for byte, less what the cache strips (managedFields).
    direct = api.get(r.STATEFULSETS, "seen-a", ns)
    cached = through.get(r.STATEFULSETS, "seen-a", ns)
    direct.metadata.ClearField("managedFields")
    assert cached == direct

    # ant list and ant show give the same output either way.
    for argv in (
        ["list", "-n", ns],
        ["list", "-n", ns, "--all-users", "-o", "json"],
        ["list", "-n", ns, "--all-users", "-o", "wide"],
        ["list", "-n", ns, "--user", "bob", "-o", "yaml"],
        ["show", "-n", ns, "seen-a", "-o", "json"],
    ):
        via_cache = ok(devcluster, *argv, cache=cache)
        assert via_cache.err == ""
        assert ages(via_cache.out) == ages(ok(devcluster, *argv).out), argv
    jobs = json.loads(
        ok(devcluster, "list", "-n", ns, "--all-users", "-o", "json", cache=cache).out
    )
    assert sorted(j["name"] for j in jobs["items"]) == ["seen-a", "seen-b", "seen-bob"]
    assert "SUCCESS" not in ok(devcluster, "list", "-n", ns, cache=cache).out

    # Those reads did reach the cache.
    families = cache.metrics(token(devcluster, "admin"))
    requests_total = families["ant_cache_requests_total"]
    assert requests_total[(("endpoint", "jobs"), ("code", "200"))] >= 3
    assert requests_total[(("endpoint", "get statefulsets"), ("code", "200"))] >= 1


def test_forbidden_and_unauthorized_like_the_api_server(
    devcluster: DevCluster, cache: CacheProcess
) -> None:
    alice = cache.client(token(devcluster, "alice"))
    for resource in CACHED:
        with pytest.raises(Forbidden):
            alice.list(resource, "bob-private")
    with pytest.raises(Forbidden):
        alice.list(r.PODS)  # cluster-wide: alice may not
    bob = cache.client(token(devcluster, "bob"))
    assert bob.list(r.PODS, "bob-private").items is not None
    denied = ant(devcluster, "list", "-n", "bob-private", cache=cache)
    assert denied.code == ExitCode.UNAUTHORIZED
    assert 'User "alice" cannot list' in denied.err
    assert ant(devcluster, "list", "-n", "bob-private", "--all-users").code == ExitCode.UNAUTHORIZED

    path = f"/api/v1/namespaces/{cache.namespace}/pods"
    for bad in (None, "not-a-token", token(devcluster, "alice") + "x"):
        resp = cache.get(path, bad)
        assert resp.status_code == 401, resp.text
        assert resp.json()["kind"] == "Status"
    assert cache.get(path, token(devcluster, "alice")).status_code == 200
    job_path = "/ant/v1/namespaces/bob-private/jobs"
    assert cache.get(job_path, token(devcluster, "alice")).status_code == 403
    assert cache.get(job_path, None).status_code == 401


def test_a_submitted_job_shows_in_ant_list_at_once(
    devcluster: DevCluster, cache: CacheProcess, tmp_path: Path
) -> None:
    """Read-your-writes: submit records the resourceVersion, list asks the cache for it."""
    ns = cache.namespace
    for i in range(5):
        name = f"ryw-{i}"
        submit(devcluster, ns, name, cache=cache, home=tmp_path)
        listed = ok(devcluster, "list", "-n", ns, "-o", "name", cache=cache, home=tmp_path)
        assert name in listed.out.split(), listed
        assert listed.err == ""
        shown = ok(devcluster, "show", "-n", ns, name, "-o", "json", cache=cache, home=tmp_path)
        assert json.loads(shown.out)["name"] == name
    state = json.loads((tmp_path / ".cache" / "ant" / "last-write.json").read_text())
    assert [v["resourceVersion"] for v in state.values()]
    assert oct((tmp_path / ".cache" / "ant" / "last-write.json").stat().st_mode & 0o777) == "0o600"


def test_wait_reads_through_the_cache_and_any_returns_on_the_first(
    devcluster: DevCluster, cache: CacheProcess, tmp_path: Path
) -> None:
    """`ant wait` lists through the cache (then watches the API server from that list's
    resourceVersion); `--any` answers when the first job gets there."""
    ns = cache.namespace
    done, forever = "wait-done", "wait-forever"
    spec = tmp_path / "done.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": done,
                "image": "busybox:1.36",
                "command": ["train"],
                "podTemplate": {"metadata": {"annotations": {"ant.dev/test-exit": "0@1"}}},
            }
        )
    )
    ok(devcluster, "submit", "-n", ns, str(spec), cache=cache, home=tmp_path)
    submit(devcluster, ns, forever, cache=cache, home=tmp_path)
    try:
        argv = ("wait", "-n", ns, done, forever, "--for", "succeeded")
        waited = ant(
            devcluster, "-v", *argv, "--any", "--timeout", "2m", cache=cache, home=tmp_path
        )
        assert waited.code == 0, str(waited)
        lists = [line for line in waited.err_lines if "/statefulsets?" in line]
        assert any(f"GET {cache.url}/" in line for line in lists), waited.err
        # Without --any, the job that never ends holds the answer until the timeout.
        held = ant(devcluster, *argv, "--timeout", "2s", cache=cache, home=tmp_path)
        assert held.code == ExitCode.TIMEOUT, str(held)
    finally:
        ok(devcluster, "delete", "-n", ns, "--yes", done, forever, cache=cache, home=tmp_path)


def test_kubectl_reads_through_the_cache(devcluster: DevCluster, cache: CacheProcess) -> None:
    def kubectl(*server: str) -> list[str]:
        argv = [
            str(devcluster.kubectl),
            "--kubeconfig",
            str(devcluster.kubeconfig),
            "--context",
            "alice",
        ]
        proc = subprocess.run(
            [*argv, *server, "get", "pods,statefulsets", "-n", cache.namespace, "-o", "name"],
            capture_output=True, text=True, timeout=60, check=False,
            env={"PATH": os.environ["PATH"], "HOME": str(cache.log.parent)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return sorted(proc.stdout.split())

    through = kubectl(
        "--server", cache.url, "--certificate-authority", str(cache.ca),
        "--token", token(devcluster, "alice"),
    )  # fmt: skip
    assert through == kubectl()
    assert through


def test_metrics_parse_as_prometheus_text(devcluster: DevCluster, cache: CacheProcess) -> None:
    families = cache.metrics(token(devcluster, "admin"))
    for name in (
        "ant_cache_objects",
        "ant_cache_events_total",
        "ant_cache_last_event_age_seconds",
        "ant_cache_requests_total",
        "ant_cache_auth_cache_total",
        "ant_cache_request_duration_seconds_bucket",
        "ant_cache_review_duration_seconds_count",
    ):
        assert families.get(name), name
    assert families["ant_cache_synced"] == {(("resource", k),): 1.0 for k in (
        "events", "nodes", "pods", "services", "statefulsets")}  # fmt: skip
    assert families["ant_cache_auth_cache_total"][(("review", "token"), ("result", "hit"))] > 0
    assert cache.get("/metrics", token(devcluster, "alice")).status_code == 403


def _relists(cache: CacheProcess, devcluster: DevCluster) -> float:
    families = cache.metrics(token(devcluster, "admin"))
    return sum(families.get("ant_cache_relists_total", {}).values())


def api_server_down(devcluster: DevCluster) -> bool:
    try:
        requests.get(devcluster.server + "/livez", verify=str(devcluster.ca), timeout=2)
    except requests.RequestException:
        return True
    return False


def staleness(cache: CacheProcess, devcluster: DevCluster) -> dict[str, float]:
    families = cache.metrics(token(devcluster, "admin"))
    return {dict(k)["resource"]: v for k, v in families["ant_cache_staleness_seconds"].items()}


CRASH_JOBS = ("crash-a", "crash-b")


def test_the_api_server_crashes_and_comes_back(devcluster: DevCluster, cache: CacheProcess) -> None:
    """Down: the cache answers from what it holds for as long as it promises
    (--max-staleness), then refuses reads and fails /readyz so that readers go to the API
    server. Back: it catches up, and is ready and current again."""
    ns = cache.namespace
    for name in CRASH_JOBS:
        submit(devcluster, ns, name)
    api = connect(str(devcluster.kubeconfig), "alice")
    alice = token(devcluster, "alice")
    through = cache.client(alice)

    def settled() -> bool:  # no status update still on its way to change a resourceVersion
        items = [s for s in api.list(r.STATEFULSETS, ns).items if s.metadata.name in CRASH_JOBS]
        return len(items) == len(CRASH_JOBS) and all(
            s.status.readyReplicas == s.spec.replicas
            and s.status.observedGeneration == s.metadata.generation
            for s in items
        )

    wait_for("crash-a and crash-b to be running and settled", settled, 60)
    before = converged(through, api, ns)
    result: list[subprocess.CompletedProcess[str]] = []
    restart = threading.Thread(
        target=lambda: result.append(
            devcluster.run_script("restart-apiserver", "--down-seconds", "6", timeout=180)
        )
    )
    restart.start()
    try:
        wait_for("the API server to go down", lambda: api_server_down(devcluster), 60)
        # Within the promise: what the cache holds is still served (to a caller it
        # checked moments ago: the reviews are cached).
        during = snapshot(through, ns)
        assert during["statefulsets"] == before["statefulsets"]

        def refusing() -> str | None:  # (a Response is falsy when it is an error)
            ready = cache.get("/readyz", None)
            return ready.text if ready.status_code == 503 and "stale" in ready.text else None

        text = wait_for(f"/readyz to fail after {MAX_STALENESS}s without the API server",
                        refusing, 30)  # fmt: skip
        assert "statefulsets for" in text, text
        assert api_server_down(devcluster), "the API server came back before the check"
        refused = cache.get(f"/apis/apps/v1/namespaces/{ns}/statefulsets", alice)
        assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "1")
        assert "has not heard from the API server" in refused.json()["message"]
    finally:
        restart.join(200)
    assert result, "restart-apiserver did not finish"
    assert result[0].returncode == 0, result[0].stderr
    # Back: changes made now reach the cache; nothing is lost or left behind.
    submit(devcluster, ns, "after-crash")
    ok(devcluster, "delete", "-n", ns, "crash-b", "--yes")
    truth = converged(through, api, ns, timeout=90)
    assert (ns, "after-crash") in truth["statefulsets"]
    assert (ns, "crash-b") not in truth["statefulsets"]
    wait_for("/readyz to pass again", lambda: cache.get("/readyz", None).status_code == 200, 60)
    wait_for(
        "every resource to be current (staleness 0)",
        lambda: not any(staleness(cache, devcluster).values()),
        60,
        state=lambda: staleness(cache, devcluster),
    )
    assert cache.proc.poll() is None


def test_a_forced_410_relists_and_converges(devcluster: DevCluster, cache: CacheProcess) -> None:
    """The cache sleeps (SIGSTOP) through an API server restart, changes it never hears of,
    and an etcd compaction past everything it has seen. Awake, its watches resume from a
    resourceVersion that is gone (the fresh watch cache does not reach back, etcd compacted
    it): 410, and it must relist, adding what it missed and dropping phantoms.

    (The restart comes first: changes made before it would reach the sleeping cache anyway,
    buffered in its watch connections.)"""
    ns = cache.namespace
    submit(devcluster, ns, "gone-a")
    submit(devcluster, ns, "gone-b")
    api = connect(str(devcluster.kubeconfig), "alice")
    through = cache.client(token(devcluster, "alice"))
    converged(through, api, ns)
    relists_before = _relists(cache, devcluster)
    cache.proc.send_signal(signal.SIGSTOP)
    try:
        restarted = devcluster.run_script("restart-apiserver", timeout=180)
        assert restarted.returncode == 0, restarted.stderr
        submit(devcluster, ns, "missed-while-asleep")
        ok(devcluster, "delete", "-n", ns, "gone-a", "--yes")
        admin = connect(str(devcluster.kubeconfig), "admin")
        admin.patch(r.SERVICES, "gone-b", {"metadata": {"labels": {"touched": "yes"}}}, ns)
        # Right after a restart the API server answers 403 until its authorizer has loaded
        # RBAC: the controller-manager's watches back off (up to ~30 s each), and the
        # garbage collector with them.
        wait_for(
            "the deleted job's pods to go",
            lambda: (
                not [p for p in api.list(r.PODS, ns).items if p.metadata.name.startswith("gone-a-")]
            ),
            150,
        )
        devcluster.compact_etcd()
    finally:
        cache.proc.send_signal(signal.SIGCONT)
    truth = converged(through, api, ns, timeout=120)
    assert (ns, "missed-while-asleep") in truth["statefulsets"]
    assert (ns, "gone-a") not in truth["statefulsets"]
    assert not [k for k in truth["pods"] if k[1].startswith("gone-a-")]
    assert _relists(cache, devcluster) > relists_before, cache.log_tail()
    assert "relisting" in cache.log.read_text()
