"""The ant controller, part of every dev cluster: `cluster.py up` starts it last.

It runs outside the cluster as one more process of it (pid file, log file, stopped first
by `down`): `python -m ant controller run` with the Python that runs `up` (so this
checkout's ant), plain HTTP on loopback. It runs under the ServiceAccount and RBAC of
deploy/controller.yaml (all of it but the Deployment, applied here), so the dev cluster
checks that those rights are enough. Its Lease timings are short so that failover tests
take seconds. See docs/development.md and docs/controller.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cluster import (
    HERE,
    START_TIMEOUT,
    Api,
    Layout,
    Starter,
    StartError,
    check_ports,
    http,
    is_ours,
    kubeconfig_text,
    read_cluster_json,
    recorded_pids,
    resolve_ports,
    spawn,
    write_cluster_json,
    write_private,
)

COMPONENT = "ant-controller"
PORT_OFFSETS = {COMPONENT: 6}
MANIFEST = HERE.parent / "deploy" / "controller.yaml"
LEASE_TIMINGS = ("--lease-duration=4", "--renew-deadline=3", "--retry-period=1")
TOKEN_SECONDS = 30 * 86400
# deploy/controller.yaml's kinds -> their collection paths (the Deployment is not applied).
PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}


def running(layout: Layout) -> bool:
    pid = recorded_pids(layout).get(COMPONENT)
    return pid is not None and is_ours(pid, layout)


def start(layout: Layout) -> None:
    """Start the controller on the running cluster (nothing to do when it runs)."""
    if running(layout):
        return
    info = read_cluster_json(layout)
    if info is None:
        raise StartError(COMPONENT, "the cluster has no cluster.json")
    ports = resolve_ports(PORT_OFFSETS)
    check_ports(ports)
    token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
    ca = Path(info["ca"])
    api = Api(info["server"], ca, token)
    apply_rbac(api)
    kubeconfig = layout.component_kubeconfig(COMPONENT)
    users = {COMPONENT: {"token": service_account_token(api)}}
    text = kubeconfig_text(
        info["server"], ca.read_bytes(), users, {COMPONENT: (COMPONENT, "default")}, COMPONENT
    )
    write_private(kubeconfig, text)
    argv = [
        sys.executable,
        "-m",
        "ant",
        f"--kubeconfig={kubeconfig}",
        "controller",
        "run",
        "--plain-http",
        f"--listen=127.0.0.1:{ports[COMPONENT]}",
        *LEASE_TIMINGS,
    ]
    starter = Starter(layout, Path(info["bin_dir"]), ports, time.monotonic() + START_TIMEOUT, {})
    starter.started[COMPONENT] = spawn(layout, COMPONENT, argv)
    ready = f"http://127.0.0.1:{ports[COMPONENT]}/readyz"
    starter.wait(
        COMPONENT,
        "ant controller /readyz",
        lambda: None if http("GET", ready, timeout=2)[0] == 200 else "not ready",
    )
    info.setdefault("components", {})[COMPONENT] = {
        "pid": starter.started[COMPONENT],
        "log": str(layout.log_file(COMPONENT)),
    }
    info["ports"] = {**info.get("ports", {}), **ports}
    write_cluster_json(layout, info)


def apply_rbac(api: Api) -> None:
    import yaml

    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if not doc or doc["kind"] not in PLURALS:
            continue
        version = doc["apiVersion"]
        base = f"/apis/{version}" if "/" in version else f"/api/{version}"
        namespace = doc["metadata"].get("namespace")
        scope = f"/namespaces/{namespace}" if namespace else ""
        api.create(f"{base}{scope}/{PLURALS[doc['kind']]}", doc)


def service_account_token(api: Api) -> str:
    path = "/api/v1/namespaces/ant-system/serviceaccounts/ant-controller/token"
    status, body = api.call("POST", path, {"spec": {"expirationSeconds": TOKEN_SECONDS}})
    if status != 201 or not isinstance(body, dict):
        raise StartError(COMPONENT, f"TokenRequest for ant-controller: HTTP {status}")
    return str(body["status"]["token"])
