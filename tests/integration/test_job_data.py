"""Data, secrets and environment: --env-file, --secret-env, --secret-mount, --mount and
--config-map against the dev cluster. The objects are created as admin in a fresh
namespace; what ant built is read back as admin. kwok pods do not really mount anything:
the pod template is what is checked, and the references are looked up at submit time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ant.errors import ExitCode
from tests.helpers import Result, run_ant

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

SECRET_VALUE = "s3cr3t-value-never-shown"


def ant(devcluster: DevCluster, *argv: str, user: str = "alice") -> Result:
    args = ["--kubeconfig", str(devcluster.kubeconfig), "--context", user]
    return run_ant([*args, *argv], vars={"USER": "nobody", "FROM_SHELL": "shell-value"})


def create_objects(devcluster: DevCluster, namespace: str) -> None:
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "wandb"}, "stringData": {"api-key": SECRET_VALUE}}
        )
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "train-config"}, "data": {"lr": "3e-4"}}
        )
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": "datasets"},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )


def let_researchers_read_them(devcluster: DevCluster, namespace: str) -> None:
    """What a cluster that lets researchers mount Secrets usually grants: get on them."""
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "job-data"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["secrets", "configmaps", "persistentvolumeclaims"],
                        "verbs": ["get"],
                    }
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "job-data"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "job-data",
                },
                "subjects": devcluster.info["researcher_subjects"],
            },
        )


def pod_template(devcluster: DevCluster, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        sts = client.AppsV1Api(api).read_namespaced_stateful_set(name, namespace)
        return dict(api.sanitize_for_serialization(sts.spec.template))


def statefulsets(devcluster: DevCluster, namespace: str) -> list[str]:
    from kubernetes import client

    with devcluster.api_client("admin") as api:
        items = client.AppsV1Api(api).list_namespaced_stateful_set(namespace).items
        return [s.metadata.name for s in items]


DATA_FLAGS = (
    "--secret-env",
    "WANDB_API_KEY=wandb:api-key",
    "--secret-mount",
    "wandb:/var/secrets/wandb",
    "--mount",
    "datasets:/data:ro",
    "--config-map",
    "train-config:/etc/train",
)


def test_a_job_reads_secrets_env_files_and_mounts(
    devcluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    create_objects(devcluster, namespace)
    env_file = tmp_path / "train.env"
    env_file.write_text("# training settings\nWANDB_PROJECT=bert\n\nFROM_SHELL\nSEED=1\n")

    # A researcher who may not read Secrets: ant says it cannot check, and submits.
    result = ant(
        devcluster,
        "submit", "-n", namespace, "--name", "data-job", "--image", "busybox:1.36",
        "--env-file", str(env_file), "--env", "SEED=7", *DATA_FLAGS, "--", "python", "train.py",
    )  # fmt: skip
    assert result.code == 0, str(result)
    assert "cannot check that Secret wandb exists (access denied)" in result.err
    assert SECRET_VALUE not in result.out + result.err

    template = pod_template(devcluster, namespace, "data-job")
    container = template["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["WANDB_PROJECT"]["value"] == "bert"
    assert env["FROM_SHELL"]["value"] == "shell-value"  # a bare KEY: from ant's environment
    assert env["SEED"]["value"] == "7"  # --env wins over --env-file
    assert env["WANDB_API_KEY"] == {
        "name": "WANDB_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}},
    }
    assert sorted(
        (m["mountPath"], m["name"], m.get("readOnly", False)) for m in container["volumeMounts"]
    ) == [
        ("/data", "pvc-datasets", True),
        ("/etc/train", "configmap-train-config", True),
        ("/var/secrets/wandb", "secret-wandb", True),
    ]
    assert {
        v["name"]: {k: v[k] for k in v if k != "name"} for v in template["spec"]["volumes"]
    } == {
        "secret-wandb": {"secret": {"secretName": "wandb", "defaultMode": 420}},
        "pvc-datasets": {"persistentVolumeClaim": {"claimName": "datasets"}},
        "configmap-train-config": {"configMap": {"name": "train-config", "defaultMode": 420}},
    }
    shown = ant(devcluster, "show", "data-job", "-n", namespace, "-o", "json")
    assert shown.code == 0, str(shown)
    assert SECRET_VALUE not in shown.out
    # `ant show` lists what the pods mount and where the secret variable comes from.
    table = ant(devcluster, "show", "data-job", "-n", namespace)
    assert table.code == 0, str(table)
    for text in (
        "/data from pvc-datasets",
        "/var/secrets/wandb from secret-wandb",
        "/etc/train from configmap-train-config",
        "secretKeyRef wandb/api-key",
        "datasets",
        "train-config",
    ):
        assert text in table.out, table.out
    assert SECRET_VALUE not in table.out

    # Once allowed to look, every reference is checked: all present, nothing to warn about.
    let_researchers_read_them(devcluster, namespace)
    result = ant(
        devcluster,
        "submit", "-n", namespace, "--name", "data-job-2", "--image", "busybox:1.36",
        *DATA_FLAGS, "--", "true",
    )  # fmt: skip
    assert result.code == 0, str(result)
    assert "cannot check" not in result.err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--secret-env", "K=nope:api-key"], "Secret nope not found in namespace"),
        (["--secret-env", "K=wandb:token"], "Secret wandb in namespace {ns} has no key token"),
        (["--secret-mount", "gone:/s"], "Secret gone not found in namespace {ns}"),
        (["--mount", "no-such-claim:/data"], "PersistentVolumeClaim no-such-claim not found"),
        (["--config-map", "absent:/etc/x"], "ConfigMap absent not found in namespace {ns}"),
    ],
)
def test_a_missing_reference_fails_the_submit_by_name(
    devcluster: DevCluster, namespace: str, flags: list[str], message: str
) -> None:
    create_objects(devcluster, namespace)
    let_researchers_read_them(devcluster, namespace)
    result = ant(
        devcluster,
        "submit", "-n", namespace, "--name", "missing", "--image", "busybox:1.36", *flags,
    )  # fmt: skip
    assert result.code == ExitCode.NOT_FOUND, str(result)
    assert len(result.err_lines) == 1, str(result)
    assert message.format(ns=namespace) in result.err
    assert SECRET_VALUE not in result.err
    assert statefulsets(devcluster, namespace) == []


def test_a_bad_reference_in_a_job_file_is_one_line_exit_2(
    devcluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: bad\nimage: busybox\nsecretMount: [wandb:/s]\n")
    result = ant(devcluster, "submit", "-n", namespace, str(spec))
    assert result.code == ExitCode.USAGE, str(result)
    assert result.err_lines == [
        f"ant: error: {spec}: secretMount: unknown field (did you mean secretMounts?)"
    ]
    assert statefulsets(devcluster, namespace) == []


def test_a_job_file_reads_its_env_files_beside_it(
    devcluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    create_objects(devcluster, namespace)
    let_researchers_read_them(devcluster, namespace)
    (tmp_path / "common.env").write_text("WANDB_PROJECT=bert\nSEED=1\nFROM_SHELL\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: env-file-job\nimage: busybox:1.36\ncommand: [python, train.py]\n"
        "envFile: common.env\nenv: {SEED: 7}\n"
        "secretEnv: [WANDB_API_KEY=wandb:api-key]\n"
    )
    # Run from elsewhere: the file's envFile is found beside the file, not in the cwd.
    result = ant(devcluster, "submit", "-n", namespace, str(spec), "--env", "LR=3e-4")
    assert result.code == 0, str(result)
    env = {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in pod_template(devcluster, namespace, "env-file-job")["spec"]["containers"][0]["env"]
    }
    assert env["WANDB_PROJECT"] == "bert"
    assert env["SEED"] == "7"  # the file's env: wins over its envFile
    assert env["LR"] == "3e-4"  # and flags over both
    assert env["FROM_SHELL"] == "shell-value"
    assert env["WANDB_API_KEY"] == {"secretKeyRef": {"name": "wandb", "key": "api-key"}}

    (tmp_path / "common.env").write_text("export SEED=1\n")
    result = ant(devcluster, "submit", "-n", namespace, str(spec), "--name", "env-file-bad")
    assert result.code == ExitCode.USAGE, str(result)
    assert result.err_lines == [
        f"ant: error: {spec}: envFile {tmp_path / 'common.env'}:1: 'export SEED' is not a "
        "variable name (the format is KEY=VALUE without 'export' (kubectl's --from-env-file))"
    ], str(result)
    assert statefulsets(devcluster, namespace) == ["env-file-job"]
