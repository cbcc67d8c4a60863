"""ant.jobs.data: env files, Secret env vars and mounts; their grammar, rules and pod spec."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ant.errors import ExitCode, ValidationError
from ant.jobs import data, manifest
from ant.jobs import spec as jobspec
from ant.jobs.identity import Identity


def env_file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / ".env"
    path.write_bytes(content)
    return str(path)


# ---- --env-file: kubectl's --from-env-file rules -------------------------------
def test_env_file_follows_kubectl_rules(tmp_path: Path) -> None:
    path = env_file(
        tmp_path,
        b"\xef\xbb\xbfFIRST=1\n"
        b"# a comment\n"
        b"\n"
        b"   INDENTED=yes\n"
        b'QUOTED="kept as written"  \n'
        b"URL=https://x/?a=b\n"
        b"FROM_SHELL\n"
        b"UNSET_IN_SHELL\n"
        b"EMPTY=\n"
        b"FIRST=2\r\n",
    )
    values = data.parse_env_file(path, {"FROM_SHELL": "from-ant's-env"})
    assert values == {
        "FIRST": "2",  # the BOM dropped; a later line wins
        "INDENTED": "yes",
        "QUOTED": '"kept as written"  ',  # verbatim: quotes and trailing spaces kept
        "URL": "https://x/?a=b",  # split at the first '=' only
        "FROM_SHELL": "from-ant's-env",
        "UNSET_IN_SHELL": "",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"export TOKEN=x\n", "without 'export'"),
        (b"OK=1\n1BAD=x\n", ":2: '1BAD' is not a valid environment variable name"),
        (b"A=\xff\n", ":1: is not UTF-8"),
    ],
)
def test_env_file_errors_name_the_line(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        data.parse_env_file(env_file(tmp_path, content), {})
    assert message in str(caught.value)
    assert caught.value.exit_code is ExitCode.USAGE


def test_a_missing_env_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(Exception) as caught:
        data.parse_env_file(str(tmp_path / "nope"), {})
    assert "--env-file: cannot read" in str(caught.value)


# ---- the reference grammars -----------------------------------------------------
def test_references_parse() -> None:
    parsed = data.parse_all(
        ["WANDB_API_KEY=wandb:api-key"],
        ["gcs-key:/var/secrets/gcs/"],
        ["datasets:/data:ro", "scratch:/scratch", "ckpt:/ckpt:rw"],
        ["train-config:/etc/train"],
    )
    assert parsed["secret_env"] == (data.SecretEnv("WANDB_API_KEY", "wandb", "api-key"),)
    assert parsed["mounts"] == (
        data.Mount("secret", "gcs-key", "/var/secrets/gcs", True),
        data.Mount("pvc", "datasets", "/data", True),
        data.Mount("pvc", "scratch", "/scratch", False),
        data.Mount("pvc", "ckpt", "/ckpt", False),
        data.Mount("configmap", "train-config", "/etc/train", True),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret_env": ["WANDB"]}, "--secret-env: 'WANDB' is not NAME=SECRET:KEY"),
        ({"secret_env": ["K=wandb"]}, "is not NAME=SECRET:KEY"),
        ({"secret_env": ["ANT_X=s:k"]}, "ANT_* variables are set by ant"),
        ({"secret_env": ["K=Bad_Name:k"]}, "is not a valid object name"),
        ({"secret_env": ["K=s:a/b"]}, "'a/b' is not a valid Secret key"),
        ({"secret_mounts": ["gcs-key"]}, "--secret-mount: 'gcs-key' is not SECRET:/path"),
        ({"mounts": ["data:relative"]}, "'relative' is not an absolute path"),
        ({"mounts": ["data:/"]}, "is not an absolute path"),
        ({"mounts": ["data:/x:rx"]}, "is not an absolute path"),
        ({"config_maps": [":/etc"]}, "--config-map: ':/etc' is not CONFIGMAP:/path"),
    ],
)
def test_bad_references_say_what_is_wrong(kwargs: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        data.parse_all(**kwargs)
    assert message in str(caught.value)


def test_a_variable_or_a_mount_point_set_twice_is_refused() -> None:
    spec = jobspec.JobSpec(name="bert", image="i", env={"K": "v"})
    with pytest.raises(ValidationError, match="K is set twice"):
        jobspec.validate(spec.with_overrides(**data.parse_all(["K=s:k"])))
    twice = data.parse_all(secret_mounts=["a:/x"], mounts=["b:/x"])
    with pytest.raises(ValidationError, match="/x is already the mount point of a:/x"):
        jobspec.validate(spec.with_overrides(**twice))


# ---- the job spec file: the same grammar, the same errors --------------------------
def test_the_spec_file_takes_the_same_references(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: bert
            image: i
            secretEnv: [WANDB_API_KEY=wandb:api-key]
            secretMounts: [gcs-key:/var/secrets/gcs]
            mounts: [datasets:/data:ro]
            configMaps: [train-config:/etc/train]
            """
        )
    )
    spec = jobspec.load_file(str(path)).with_overrides(**data.parse_all(mounts=["more:/more"]))
    assert [str(m) for m in spec.mounts] == [
        "gcs-key:/var/secrets/gcs",
        "datasets:/data:ro",
        "train-config:/etc/train",
        "more:/more",  # flags add to the file's
    ]
    path.write_text("name: bert\nmounts: [datasets]\n")
    with pytest.raises(
        ValidationError, match=r"job.yaml: mounts: 'datasets' is not PVC:/path\[:ro\]"
    ):
        jobspec.load_file(str(path))
    path.write_text("name: bert\nsecretMount: [a:/b]\n")
    with pytest.raises(ValidationError, match="did you mean secretMounts"):
        jobspec.load_file(str(path))


# ---- the pod spec -------------------------------------------------------------------
def test_the_pod_spec_mounts_and_reads_what_was_asked() -> None:
    spec = jobspec.JobSpec(name="bert", image="i").with_overrides(
        **data.parse_all(
            ["WANDB_API_KEY=wandb:api-key"],
            ["gcs-key:/var/secrets/gcs"],
            ["datasets:/data:ro", "datasets:/again"],
            ["train-config:/etc/train"],
        )
    )
    provenance = manifest.Provenance(Identity(username="alice"), "2026-01-01T00:00:00Z", "ant")
    pod = manifest.build(spec, "bert", "research", provenance).statefulset["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert {
        "name": "WANDB_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}},
    } in container["env"]
    assert pod["spec"]["volumes"] == [
        {"name": "secret-gcs-key", "secret": {"secretName": "gcs-key"}},
        {"name": "pvc-datasets", "persistentVolumeClaim": {"claimName": "datasets"}},
        {"name": "configmap-train-config", "configMap": {"name": "train-config"}},
    ]
    assert container["volumeMounts"] == [
        {"name": "secret-gcs-key", "mountPath": "/var/secrets/gcs", "readOnly": True},
        {"name": "pvc-datasets", "mountPath": "/data", "readOnly": True},
        {"name": "pvc-datasets", "mountPath": "/again"},
        {"name": "configmap-train-config", "mountPath": "/etc/train", "readOnly": True},
    ]
    assert data.references(pod["spec"]) == {
        ("secret", "wandb"): ["api-key"],
        ("secret", "gcs-key"): [],
        ("pvc", "datasets"): [],
        ("configmap", "train-config"): [],
    }


def test_long_or_dotted_sources_get_valid_volume_names() -> None:
    long = data.Mount("secret", "a." + "b" * 70, "/x")
    assert len(long.volume) <= 63
    assert "." not in long.volume
    assert long.volume != data.Mount("secret", "a." + "b" * 71, "/x").volume
