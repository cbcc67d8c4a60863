"""Shared test fixtures.

Sections (keep them separate; add new fixtures in their own section):
- Environment isolation: an autouse fixture so the developer's shell never leaks into tests.
- Dev cluster: `devcluster` (session), `kueue` (session) and `namespace` (function), for
  tests marked `cluster`.
- ant set-up: `ant_priorities` (session): ant's PriorityClasses, installed as admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import wait_for

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REPO = Path(__file__).resolve().parent.parent

# The environment as pytest found it, before any fixture changed it: the session-scoped
# cluster fixture runs devcluster/cluster.py with it (so ANT_DEVCLUSTER_* settings apply).
ORIGINAL_ENV: Mapping[str, str] = dict(os.environ)


# =============================================================================
# Environment isolation
# =============================================================================

_CLEARED_VARS = (
    "KUBECONFIG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "PYTHONBREAKPOINT",
)


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No KUBECONFIG, ANT_* or proxy settings; a throwaway HOME; fixed width, no colour."""
    for name in list(os.environ):
        if name in _CLEARED_VARS or name.startswith("ANT_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")


# =============================================================================
# Dev cluster (devcluster/cluster.py; see docs/development.md)
# =============================================================================

CLUSTER_SCRIPT = REPO / "devcluster" / "cluster.py"
# Generous: `up` builds the binaries first when they are missing (run `make devcluster`).
CLUSTER_UP_TIMEOUT = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the dev cluster are marked `cluster` even when they forget to say so."""
    for item in items:
        if "devcluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def run_cluster_script(
    *args: str, timeout: float = CLUSTER_UP_TIMEOUT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """devcluster/cluster.py with the environment pytest started with (not the isolated one),
    plus ``env`` (e.g. another state dir and ports: a private cluster)."""
    return subprocess.run(
        [sys.executable, str(CLUSTER_SCRIPT), *args],
        env={**ORIGINAL_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def cluster_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cluster_script``, for a test that starts a private cluster of its own."""
    return run_cluster_script


@dataclass(frozen=True)
class DevCluster:
    """A running dev cluster, as described by its cluster.json."""

    kubeconfig: Path
    server: str
    ca: Path
    tokens: Mapping[str, str]  # user -> bearer token: admin, alice, bob, viewer
    carol_cert: Path
    carol_key: Path
    bin_dir: Path
    kubectl: Path
    state_dir: Path
    node_count: int
    tpus_per_node: int
    info: Mapping[str, Any] = field(repr=False)  # the whole cluster.json

    @property
    def admin_token(self) -> str:
        return self.tokens["admin"]

    @property
    def alice_token(self) -> str:
        return self.tokens["alice"]

    @property
    def bob_token(self) -> str:
        return self.tokens["bob"]

    @property
    def viewer_token(self) -> str:
        return self.tokens["viewer"]

    def api_client(self, user: str = "admin") -> ApiClient:
        """A `kubernetes` ApiClient verifying TLS against the cluster CA, authenticated as
        `user` (admin/alice/bob/viewer by token, carol by client certificate). Close it (`with`)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = str(self.ca)
        cfg.verify_ssl = True
        if user == "carol":
            cfg.cert_file, cfg.key_file = str(self.carol_cert), str(self.carol_key)
        else:
            cfg.api_key = {"BearerToken": self.tokens[user]}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
        return client.ApiClient(cfg)

    def run_script(
        self, *args: str, timeout: float = CLUSTER_UP_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """devcluster/cluster.py (up/status/env) for this cluster, e.g. `run_script("status")`."""
        return run_cluster_script(*args, timeout=timeout)

    def compact_etcd(self) -> None:
        """Compact etcd past every resourceVersion a client holds (``cluster.py
        compact-etcd``): resuming from one of them is 410 Gone."""
        proc = self.run_script("compact-etcd", timeout=30)
        assert proc.returncode == 0, proc.stderr

    def kubectl_args(self, *args: str, context: str = "admin") -> list[str]:
        """argv for the built kubectl against this cluster (never /usr/bin/kubectl)."""
        return [
            str(self.kubectl),
            "--kubeconfig",
            str(self.kubeconfig),
            "--context",
            context,
            *args,
        ]


def load_devcluster(cluster_json: Path) -> DevCluster:
    info = json.loads(cluster_json.read_text())
    users = info["users"]
    tokens = {
        user: Path(fields["token_file"]).read_text().strip()
        for user, fields in users.items()
        if "token_file" in fields
    }
    return DevCluster(
        kubeconfig=Path(info["kubeconfig"]),
        server=info["server"],
        ca=Path(info["ca"]),
        tokens=tokens,
        carol_cert=Path(users["carol"]["client_certificate"]),
        carol_key=Path(users["carol"]["client_key"]),
        bin_dir=Path(info["bin_dir"]),
        kubectl=Path(info["kubectl"]),
        state_dir=Path(info["state_dir"]),
        node_count=info["nodes"]["count"],
        tpus_per_node=info["nodes"]["tpus_per_node"],
        info=info,
    )


@pytest.fixture(scope="session")
def devcluster() -> DevCluster:
    """Starts the dev cluster (or reuses a running one). Fails, never skips, without it."""
    try:
        proc = run_cluster_script("up")
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"devcluster/cluster.py up timed out after {err.timeout:.0f}s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"the dev cluster did not start (devcluster/cluster.py up exited {proc.returncode}):\n"
            f"{proc.stderr.strip()}",
            pytrace=False,
        )
    kubeconfig = Path(proc.stdout.strip().splitlines()[-1])
    return load_devcluster(kubeconfig.parent / "cluster.json")


@dataclass(frozen=True)
class Kueue:
    """Kueue running on the dev cluster, as described by cluster.json's `kueue`."""

    namespaces: tuple[str, ...]  # the namespaces it manages (its webhooks act there only)
    local_queue: str  # a LocalQueue of that name in each of them
    cluster_queue: str  # its quota is the whole node pool's
    resource_flavor: str
    info: Mapping[str, Any] = field(repr=False)


@pytest.fixture(scope="session")
def kueue(devcluster: DevCluster) -> Kueue:
    """Starts Kueue on the dev cluster (`cluster.py up --kueue`; built on first use, ~10 min
    cold: `make devcluster-kueue`). Fails, never skips, without it."""
    try:
        proc = run_cluster_script("up", "--kueue")
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"cluster.py up --kueue timed out after {err.timeout:.0f}s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"Kueue did not start (devcluster/cluster.py up --kueue exited {proc.returncode}):\n"
            f"{proc.stderr.strip()}",
            pytrace=False,
        )
    info = json.loads((devcluster.state_dir / "cluster.json").read_text())["kueue"]
    return Kueue(
        namespaces=tuple(info["namespaces"]),
        local_queue=info["local_queue"],
        cluster_queue=info["cluster_queue"],
        resource_flavor=info["resource_flavor"],
        info=info,
    )


@pytest.fixture
def namespace(devcluster: DevCluster) -> Iterator[str]:
    """A fresh namespace with the same researcher RBAC as `research` (alice, bob, carol).

    Created as admin; deleted afterwards without waiting for the deletion to finish.
    """
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        core.create_namespace(
            {"metadata": {"name": name, "labels": {"ant.dev/test-namespace": "true"}}}
        )
        try:
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
                # Pods are rejected until the controller-manager creates it.
                sas = core.list_namespaced_service_account(
                    name, field_selector="metadata.name=default"
                )
                return bool(sas.items)

            wait_for(f"the default ServiceAccount in namespace {name}", has_default_sa)
            yield name
        finally:
            try:
                core.delete_namespace(name)
            except client.ApiException as err:
                if err.status != 404:
                    raise


# =============================================================================
# ant set-up: what ant itself needs in the dev cluster
# =============================================================================


@pytest.fixture(scope="session")
def ant_priorities(devcluster: DevCluster) -> None:
    """ant's PriorityClasses (ant-opportunistic, ant-normal, ant-high), installed as admin.

    Jobs cannot be submitted without them. Idempotent (missing classes are created, existing
    ones kept) and never removed: other sessions may share the cluster.
    """
    from ant.jobs import priorities
    from ant.kube.client import connect

    client = connect(str(devcluster.kubeconfig), "admin", env={})
    try:
        states = priorities.install(client)
    finally:
        client.transport.close()
    differs = [f"{s.level.name}: {s.detail}" for s in states if s.state == "differs"]
    if differs:
        pytest.fail(f"ant's PriorityClasses differ in the dev cluster: {'; '.join(differs)}")
