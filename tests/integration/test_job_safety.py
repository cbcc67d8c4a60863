"""Faults found by trying to break ant (issue 14), against the dev cluster.

What exists is checked with an independent client (the ``kubernetes`` package, as admin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ant.errors import ExitCode
from tests.integration.test_cli_jobs import Ant, ant, exists, k8s

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]
__all__ = ["ant"]  # the fixture, used by name


# ---- names never become paths --------------------------------------------------------------
def test_a_path_as_a_job_name_deletes_nothing(
    ant: Ant, devcluster: DevCluster, namespace: str
) -> None:
    core, _, api = k8s(devcluster)
    with api:
        core.create_namespaced_service(
            namespace, {"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}}
        )
        trick = f"../../../../api/v1/namespaces/{namespace}/services/x"
        result = ant("delete", "-n", namespace, "--yes", trick, user="admin")
        assert result.code == ExitCode.USAGE, result
        assert "not a valid job name" in result.err
        assert exists(lambda: core.read_namespaced_service("x", namespace))

        result = ant("logs", "-n", namespace, "../../etc", user="admin")
        assert result.code == ExitCode.USAGE, result
        assert result.out == ""


def test_an_invalid_namespace_is_a_usage_error_not_unauthorized(ant: Ant) -> None:
    result = ant("list", "-n", "../kube-system")
    assert result.code == ExitCode.USAGE, result
    assert result.err_lines == [
        "ant: error: --namespace: '../kube-system' is not a valid namespace (at most 63 "
        "lowercase letters, digits and '-', starting and ending alphanumeric)"
    ]
