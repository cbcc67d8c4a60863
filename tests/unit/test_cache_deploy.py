"""deploy/cache.yaml: the objects ant cache needs, and no more rights than it uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ant.cache.store import KINDS

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "cache.yaml"


def objects() -> dict[tuple[str, str], Any]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_it_has_every_object() -> None:
    found = objects()
    for key in [
        ("ServiceAccount", "ant-cache"),
        ("ClusterRole", "ant-cache"),
        ("ClusterRoleBinding", "ant-cache"),
        ("ClusterRoleBinding", "ant-cache:auth-delegator"),
        ("Deployment", "ant-cache"),
        ("Service", "ant-cache"),
    ]:
        assert key in found, key


def test_its_own_rights_are_list_and_watch_of_what_it_caches() -> None:
    found = objects()
    rules = found[("ClusterRole", "ant-cache")]["rules"]
    granted = {(g, res) for rule in rules for g in rule["apiGroups"] for res in rule["resources"]}
    cached = {(k.resource.group, k.name) for k in KINDS.values()}
    assert granted == cached
    assert all(sorted(rule["verbs"]) == ["list", "watch"] for rule in rules)
    delegator = found[("ClusterRoleBinding", "ant-cache:auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    for binding in ("ant-cache", "ant-cache:auth-delegator"):
        subjects = found[("ClusterRoleBinding", binding)]["subjects"]
        assert subjects == [
            {"kind": "ServiceAccount", "name": "ant-cache", "namespace": "ant-system"}
        ]


def test_the_deployment_is_replicated_probed_and_served() -> None:
    found = objects()
    deployment = found[("Deployment", "ant-cache")]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "ant-cache"
    (container,) = pod["containers"]
    assert container["args"][:2] == ["cache", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["ports"][0]["containerPort"] == 8443
    assert any(a.startswith("--tls-cert-file=") for a in container["args"])
    service = found[("Service", "ant-cache")]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "https"
