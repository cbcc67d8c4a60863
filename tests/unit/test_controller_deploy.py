"""deploy/controller.yaml: the objects the controller needs, and no more rights than it uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "controller.yaml"


def objects() -> dict[tuple[str, str], Any]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_its_rights_are_what_the_transitions_write_and_the_informers_read() -> None:
    found = objects()
    assert grants(found[("ClusterRole", "ant-controller")]["rules"]) == {
        ("apps", "statefulsets", "list"),
        ("apps", "statefulsets", "watch"),
        ("apps", "statefulsets", "patch"),
        ("apps", "statefulsets", "delete"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "patch"),
        ("", "pods", "delete"),
        ("", "services", "delete"),
    }
    election = found[("Role", "ant-controller:leader-election")]
    assert election["metadata"]["namespace"] == "ant-system"
    named = [r for r in election["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["ant-controller"],
            "verbs": ["get", "patch"],
        }
    ]
    status = found[("RoleBinding", "ant-controller:status")]
    assert status["subjects"][0]["name"] == "system:authenticated"
    assert grants(found[("Role", "ant-controller:status")]["rules"]) == {
        ("coordination.k8s.io", "leases", "get")
    }


def test_two_replicas_probed_without_a_token() -> None:
    deployment = objects()[("Deployment", "ant-controller")]
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["controller", "run"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
