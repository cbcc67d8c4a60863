"""Kueue, an optional part of the dev cluster: `cluster.py up --kueue`.

The manager (built by `build.sh kueue`) runs outside the cluster as one more process of
it (pid file, log file, stopped by `down`), as admin, with leader election and internal
certificate management off. Everything it serves listens on 127.0.0.1; its certificates
are issued by the cluster CA. Order matters, because Kueue's pod and StatefulSet webhooks
fail closed: CRDs (server-side apply, conversion webhook by URL), start, wait for
/readyz, and only then register the webhooks, limited to the namespaces in
QUEUED_NAMESPACES. `down` removes the webhooks before it stops the manager.

Objects for ant and its tests: a ResourceFlavor for the node pool, a ClusterQueue whose
quota is the pool's, a LocalQueue in each queued namespace, the visibility API through an
APIService (an ExternalName Service to localhost), and read access to all of it for
researchers and the viewer. See docs/development.md, "Kueue".
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from cluster import (
    HERE,
    RESEARCHERS_GROUP,
    START_TIMEOUT,
    VIEWER,
    Api,
    Layout,
    Pki,
    Starter,
    StartError,
    check_ports,
    http,
    is_ours,
    log,
    read_cluster_json,
    recorded_pids,
    resolve_ports,
    spawn,
    subject,
    write_cluster_json,
    write_private,
)

COMPONENT = "kueue"
KUEUE_NAMESPACE = "kueue-system"
QUEUED_NAMESPACES = ("queued",)
QUEUED_SELECTOR = {
    "matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(QUEUED_NAMESPACES)}
    ]
}
RESOURCE_FLAVOR = "tpu-v5p"
CLUSTER_QUEUE = "tpu-pool"
LOCAL_QUEUE = "tpu"
READER_CLUSTERROLE = "ant:kueue-reader"
VISIBILITY_SERVICE = "kueue-visibility"
VISIBILITY_VERSION = "v1beta2"
# Upstream's names (kustomize namePrefix "kueue-"): `down` deletes these.
MUTATING_WEBHOOKS = "kueue-mutating-webhook-configuration"
VALIDATING_WEBHOOKS = "kueue-validating-webhook-configuration"
APISERVICE = f"{VISIBILITY_VERSION}.visibility.kueue.x-k8s.io"
# Which of upstream's webhooks to register: Kueue's own objects, and the pod and
# StatefulSet integrations (the only frameworks enabled here).
OWN_WEBHOOKS = ("clusterqueue", "cohort", "resourceflavor", "workload")
JOB_WEBHOOKS = ("pod", "statefulset")
# base + 6..9 are left to other local servers (the ant controller listens on base + 6).
PORT_OFFSETS = {
    "kueue-webhook": 10,
    "kueue-metrics": 11,
    "kueue-health": 12,
    "kueue-visibility": 13,
}

KUEUE = "/apis/kueue.x-k8s.io/v1beta2"


def upstream_dir() -> Path:
    """Kueue's module source (CRDs, webhook manifests) in the Go module cache."""
    proc = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kueue"],
        cwd=HERE / "kueue",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise StartError(COMPONENT, f"go list sigs.k8s.io/kueue failed: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


def resolve_bin() -> Path:
    override = os.environ.get("ANT_DEVCLUSTER_KUEUE_BIN")
    if override:
        return Path(override).expanduser()
    proc = subprocess.run(
        [str(HERE / "build.sh"), "kueue"], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise StartError("build", f"devcluster/build.sh kueue failed (exit {proc.returncode})")
    return Path(lines[-1]) / "kueue"


def workdir(layout: Layout) -> Path:
    return layout.state / "kueue"


def write_certs_and_config(layout: Layout, ports: dict[str, int]) -> Path:
    """One serving cert for the webhook, metrics and visibility servers; the config file."""
    work = workdir(layout)
    Pki(layout).leaf(
        "ca",
        COMPONENT,
        "kueue",
        server=True,
        # The aggregator checks the visibility server against its Service's name.
        dns=(f"{VISIBILITY_SERVICE}.{KUEUE_NAMESPACE}.svc",),
    )
    # build.sh made the manager read these relative to its working directory.
    for sub in ("webhook-certs", "metrics-certs", "visibility-certs"):
        write_private(work / sub / "tls.crt", layout.cert(COMPONENT).read_bytes(), 0o644)
        write_private(work / sub / "tls.key", layout.key(COMPONENT).read_bytes())
    config = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": KUEUE_NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{ports['kueue-health']}"},
        "metrics": {"bindAddress": f"127.0.0.1:{ports['kueue-metrics']}"},
        "webhook": {
            "host": "127.0.0.1",
            "port": ports["kueue-webhook"],
            "certDir": str(work / "webhook-certs"),
        },
        "visibilityServer": {"bindAddress": "127.0.0.1", "bindPort": ports["kueue-visibility"]},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "clientConnection": {"qps": 1000, "burst": 2000},
        "managedJobsNamespaceSelector": QUEUED_SELECTOR,
        "integrations": {"frameworks": ["pod", "statefulset"]},
    }
    path = work / "config.yaml"
    write_private(path, json.dumps(config, indent=2) + "\n", 0o644)  # JSON is YAML
    return path


def apply(api: Api, path: str, obj: dict[str, Any]) -> None:
    """Server-side apply as field manager `ant-devcluster` (the Workload CRD is too large
    for a client-side apply's last-applied annotation)."""
    url = f"{path}/{obj['metadata']['name']}?fieldManager=ant-devcluster&force=true"
    status, raw = http(
        "PATCH",
        api.server + url,
        ca=api.ca,
        token=api.token,
        body=obj,
        content_type="application/apply-patch+yaml",
        timeout=30,
    )
    if status not in (200, 201):
        msg = raw[-300:].decode(errors="replace")
        raise StartError(COMPONENT, f"applying {obj['kind']} {obj['metadata']['name']}: {msg}")


def apply_crds(api: Api, upstream: Path, ca_bundle: str, webhook_port: int) -> None:
    import yaml

    # The CRDs upstream's kustomization patches with a conversion webhook.
    crd_dir = upstream / "config/components/crd"
    kustomization = yaml.safe_load((crd_dir / "kustomization.yaml").read_text())
    converted = {
        yaml.safe_load((crd_dir / patch["path"]).read_text())["metadata"]["name"]
        for patch in kustomization["patches"]
        if Path(patch["path"]).name.startswith("webhook_in_")
    }
    for path in sorted((upstream / "config/components/crd/bases").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["metadata"]["name"] in converted:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{webhook_port}/convert",
                        "caBundle": ca_bundle,
                    },
                    "conversionReviewVersions": ["v1"],
                },
            }
        apply(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)


def crds_missing(api: Api, upstream: Path) -> str | None:
    """None once discovery lists every Kueue CRD's resource, else what is missing."""
    import yaml

    wanted: dict[str, set[str]] = {}
    for path in (upstream / "config/components/crd/bases").glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                gv = f"{spec['group']}/{version['name']}"
                wanted.setdefault(gv, set()).add(spec["names"]["plural"])
    for gv, plurals in sorted(wanted.items()):
        status, body = api.call("GET", f"/apis/{gv}")
        served = {r["name"] for r in body.get("resources", [])} if status == 200 else set()
        if plurals - served:
            return f"{gv} does not serve {', '.join(sorted(plurals - served))} yet"
    return None


def webhook_configurations(upstream: Path, ca_bundle: str, port: int) -> list[dict[str, Any]]:
    """Upstream's webhook manifests, pointed at 127.0.0.1 and cut to what runs here."""
    import yaml

    wanted = {f"{kind}{name}.kb.io" for kind in "mv" for name in (*OWN_WEBHOOKS, *JOB_WEBHOOKS)}
    configs = []
    manifests = (upstream / "config/components/webhook/manifests.yaml").read_text()
    for doc in yaml.safe_load_all(manifests):
        if not doc:
            continue
        doc["metadata"] = {"name": f"kueue-{doc['metadata']['name']}"}
        doc["webhooks"] = [w for w in doc["webhooks"] if w["name"] in wanted]
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle}
            if hook["name"][1 : -len(".kb.io")] in JOB_WEBHOOKS:
                hook["namespaceSelector"] = QUEUED_SELECTOR
        configs.append(doc)
    return configs


def queue_objects(info: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ResourceFlavor, the ClusterQueue with the whole pool's quota, the LocalQueues."""
    nodes = info["nodes"]["count"]
    quota = {
        "google.com/tpu": nodes * info["nodes"]["tpus_per_node"],
        "cpu": nodes * 64,
        "memory": f"{nodes * 512}Gi",
    }
    flavor = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": RESOURCE_FLAVOR},
        "spec": {"nodeLabels": {"cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice"}},
    }
    cluster_queue = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": CLUSTER_QUEUE},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": list(quota),
                    "flavors": [
                        {
                            "name": RESOURCE_FLAVOR,
                            "resources": [
                                {"name": k, "nominalQuota": str(v)} for k, v in quota.items()
                            ],
                        }
                    ],
                }
            ],
        },
    }
    objects = [(f"{KUEUE}/resourceflavors", flavor), (f"{KUEUE}/clusterqueues", cluster_queue)]
    for ns in QUEUED_NAMESPACES:
        local = {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": LOCAL_QUEUE, "namespace": ns},
            "spec": {"clusterQueue": CLUSTER_QUEUE},
        }
        objects.append((f"{KUEUE}/namespaces/{ns}/localqueues", local))
    return objects


def visibility_objects(ca_bundle: str, port: int) -> list[tuple[str, dict[str, Any]]]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": VISIBILITY_SERVICE, "namespace": KUEUE_NAMESPACE},
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": "https", "port": port}],
        },
    }
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": APISERVICE},
        "spec": {
            "group": "visibility.kueue.x-k8s.io",
            "version": VISIBILITY_VERSION,
            "service": {"name": VISIBILITY_SERVICE, "namespace": KUEUE_NAMESPACE, "port": port},
            "caBundle": ca_bundle,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
    return [
        (f"/api/v1/namespaces/{KUEUE_NAMESPACE}/services", service),
        ("/apis/apiregistration.k8s.io/v1/apiservices", apiservice),
    ]


def reader_rbac() -> list[tuple[str, dict[str, Any]]]:
    read = ["get", "list", "watch"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": READER_CLUSTERROLE},
        "rules": [
            {
                "apiGroups": ["kueue.x-k8s.io"],
                "resources": [
                    "workloads",
                    "localqueues",
                    "clusterqueues",
                    "resourceflavors",
                    "cohorts",
                    "workloadpriorityclasses",
                ],
                "verbs": read,
            },
            {
                "apiGroups": ["visibility.kueue.x-k8s.io"],
                "resources": ["clusterqueues/pendingworkloads", "localqueues/pendingworkloads"],
                "verbs": ["get"],
            },
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": READER_CLUSTERROLE},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": READER_CLUSTERROLE,
        },
        "subjects": [subject("Group", RESEARCHERS_GROUP), subject("User", VIEWER)],
    }
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    return [(f"{rbac}/clusterroles", role), (f"{rbac}/clusterrolebindings", binding)]


def running(layout: Layout) -> bool:
    pid = recorded_pids(layout).get(COMPONENT)
    return pid is not None and is_ours(pid, layout)


def start(layout: Layout) -> None:
    """Start Kueue on the running cluster (idempotent: nothing to do when it runs)."""
    if running(layout):
        return
    info = read_cluster_json(layout)
    assert info is not None
    t0 = time.monotonic()
    exe = resolve_bin()
    ports = resolve_ports(PORT_OFFSETS)
    check_ports(ports)
    upstream = upstream_dir()
    token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
    api = Api(info["server"], Path(info["ca"]), token)
    ca_bundle = base64.b64encode(Path(info["ca"]).read_bytes()).decode()
    config = write_certs_and_config(layout, ports)
    api.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUEUE_NAMESPACE}},
    )
    apply_crds(api, upstream, ca_bundle, ports["kueue-webhook"])

    starter = Starter(layout, exe.parent, ports, time.monotonic() + START_TIMEOUT, {})
    # The manager's RESTMapper exits on a kind the apiserver does not serve yet.
    starter.wait(COMPONENT, "the Kueue CRDs to be served", lambda: crds_missing(api, upstream))
    argv = [
        # env -C: the manager finds its certificates relative to its working directory.
        shutil.which("env") or "/usr/bin/env",
        "-C",
        str(workdir(layout)),
        str(exe),
        f"--config={config}",
        f"--kubeconfig={layout.kubeconfig}",
        f"--visibility-server-port={ports['kueue-visibility']}",
    ]
    starter.started[COMPONENT] = spawn(layout, COMPONENT, argv)
    health = f"http://127.0.0.1:{ports['kueue-health']}/readyz"
    starter.wait(
        COMPONENT,
        "kueue /readyz",
        lambda: None if http("GET", health, timeout=2)[0] == 200 else "not ready",
    )
    # Only now: the webhooks fail closed, so pods in `queued` need the manager up.
    for config_doc in webhook_configurations(upstream, ca_bundle, ports["kueue-webhook"]):
        kind = config_doc["kind"].lower() + "s"
        apply(api, f"/apis/admissionregistration.k8s.io/v1/{kind}", config_doc)
    for path, obj in [
        *visibility_objects(ca_bundle, ports["kueue-visibility"]),
        *reader_rbac(),
        *queue_objects(info),
    ]:
        apply(api, path, obj)

    def visibility_available() -> str | None:
        path = f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}"
        _, body = api.call("GET", path)
        status = body.get("status", {}) if isinstance(body, dict) else {}
        conds = {c["type"]: c for c in status.get("conditions", [])}
        available = conds.get("Available", {})
        return None if available.get("status") == "True" else str(available.get("message"))

    starter.wait(COMPONENT, "the visibility APIService to be Available", visibility_available)
    info["kueue"] = {
        "pid": starter.started[COMPONENT],
        "log": str(layout.log_file(COMPONENT)),
        "bin": str(exe),
        "ports": ports,
        "namespaces": list(QUEUED_NAMESPACES),
        "local_queue": LOCAL_QUEUE,
        "cluster_queue": CLUSTER_QUEUE,
        "resource_flavor": RESOURCE_FLAVOR,
        "startup_seconds": round(time.monotonic() - t0, 2),
    }
    write_cluster_json(layout, info)
    log(f"kueue up in {time.monotonic() - t0:.1f}s; LocalQueue {LOCAL_QUEUE} in queued")


def unregister(layout: Layout) -> None:
    """Remove the webhooks and the APIService (best effort: the apiserver may be down)."""
    info = read_cluster_json(layout)
    if not info:
        return
    try:
        token = Path(info["users"]["admin"]["token_file"]).read_text().strip()
    except (OSError, KeyError):
        return
    admission = "/apis/admissionregistration.k8s.io/v1"
    for path in (
        f"{admission}/mutatingwebhookconfigurations/{MUTATING_WEBHOOKS}",
        f"{admission}/validatingwebhookconfigurations/{VALIDATING_WEBHOOKS}",
        f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}",
    ):
        try:
            http("DELETE", info["server"] + path, ca=Path(info["ca"]), token=token)
        except OSError:
            return
