"""Names never change a request path: checked where they enter, encoded where paths are built.

The CLI runs against a scripted server, so a refused name is seen to send no request at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ant.errors import ExitCode, ValidationError
from ant.kube import resources as r
from ant.kube.client import api_path
from tests.helpers import run_ant
from tests.unit.scripted_server import ScriptedServer, scripted_server, write_kubeconfig


# ---- the encoder ---------------------------------------------------------------------------
def test_resource_paths() -> None:
    assert r.PODS.path("research", "bert-0", "log") == "/api/v1/namespaces/research/pods/bert-0/log"
    assert r.STATEFULSETS.path("ns") == "/apis/apps/v1/namespaces/ns/statefulsets"
    assert r.STATEFULSETS.path() == "/apis/apps/v1/statefulsets"
    assert r.NODES.path("ignored", "node-1") == "/api/v1/nodes/node-1"


@pytest.mark.parametrize(
    ("segment", "encoded"),
    [("a b", "a%20b"), ("q?x=1", "q%3Fx%3D1"), ("h#f", "h%23f"), ("é", "%C3%A9"), ("a.b", "a.b")],
)
def test_characters_that_would_change_a_url_are_percent_encoded(segment: str, encoded: str) -> None:
    assert api_path("api", "v1", "pods", segment) == f"/api/v1/pods/{encoded}"


@pytest.mark.parametrize(
    "segment", ["", ".", "..", "../../api", "a/b", "x%2Fy", "%2e%2e"], ids=repr
)
def test_segments_that_would_climb_or_add_a_level_are_refused(segment: str) -> None:
    with pytest.raises(ValidationError, match="cannot be part of a request path"):
        r.SERVICES.path("research", segment)
    if segment:  # an empty namespace means every namespace
        with pytest.raises(ValidationError):
            r.SERVICES.path(segment, "x")


# ---- the CLI -------------------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


@pytest.fixture
def kubeconfig(tmp_path: Path, server: ScriptedServer) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", server.url)


TRICKS = ["../../../../api/v1/namespaces/research/services/x", "../../etc", "a/b", "x?y", "Bert"]


@pytest.mark.parametrize(
    "argv",
    [
        *(["delete", "--yes", t] for t in TRICKS),
        *(["logs", t] for t in TRICKS),
        *(["show", t] for t in TRICKS),
        *(["restart", "--yes", t] for t in TRICKS),
        ["delete", "--yes", "ok", "../x"],
        ["update", "..", "--image", "i"],
        ["rollout", "status", "statefulset/../x"],
        ["rollback", "sts/a%2Fb"],
    ],
    ids=" ".join,
)
def test_a_bad_job_name_is_exit_2_and_sends_nothing(
    argv: list[str], kubeconfig: Path, server: ScriptedServer
) -> None:
    result = run_ant([*argv, "--kubeconfig", str(kubeconfig)])
    assert result.code == ExitCode.USAGE, result
    assert len(result.err_lines) == 1, result
    assert "not a" in result.err
    assert "job" in result.err
    assert server.seen == []


@pytest.mark.parametrize("namespace", ["../kube-system", "a/b", "Research", "x" * 64, "-a"])
def test_a_bad_namespace_is_exit_2_and_sends_nothing(
    namespace: str, kubeconfig: Path, server: ScriptedServer
) -> None:
    for vars, argv in [
        ({}, ["list", "-n", namespace]),
        ({"ANT_NAMESPACE": namespace}, ["show", "bert"]),
    ]:
        result = run_ant([*argv, "--kubeconfig", str(kubeconfig)], vars=vars)
        assert result.code == ExitCode.USAGE, result
        assert len(result.err_lines) == 1, result
        assert "--namespace: " in result.err
        assert "not a valid namespace" in result.err
    assert server.seen == []


def test_a_bad_namespace_in_the_kubeconfig_is_exit_2(
    kubeconfig: Path, server: ScriptedServer
) -> None:
    kubeconfig.write_text(kubeconfig.read_text().replace("namespace: research", "namespace: a/b"))
    result = run_ant(["list", "--kubeconfig", str(kubeconfig)])
    assert result.code == ExitCode.USAGE, result
    assert "the namespace of context c: 'a/b' is not a valid namespace" in result.err
    assert server.seen == []
