"""ant.jobs.spec: job files, flag overrides and the rules checked before anything is sent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ant.errors import ExitCode, UsageError, ValidationError
from ant.jobs import durations
from ant.jobs import spec as jobspec
from ant.jobs.spec import JobSpec


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def good(**changes: object) -> JobSpec:
    base = JobSpec(name="bert", image="ghcr.io/lab/train:1.4")
    return base.with_overrides(**changes)


# ---- loading files -------------------------------------------------------------
def test_a_full_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: bert-pretrain
        image: ghcr.io/lab/train:1.4
        command: [python, train.py, --lr, "3e-4"]
        replicas: 16
        resources: {google.com/tpu: 4, cpu: 8, memory: 64Gi}
        env: {WANDB_PROJECT: bert, SEED: 7}
        priority: opportunistic
        labels: {team: nlp, version: 2}
        meta: {dataset: c4-en}
        description: BERT-large, seq 512
        nodeSelector: {cloud.google.com/gke-tpu-topology: 2x2x2}
        tolerations: [{key: google.com/tpu, operator: Exists, effect: NoSchedule}]
        podTemplate: {spec: {volumes: [{name: data, emptyDir: {}}]}}
        """,
    )
    spec = jobspec.load_file(path)
    assert spec.name == "bert-pretrain"
    assert spec.command == ("python", "train.py", "--lr", "3e-4")
    assert spec.replicas == 16
    # Numbers in maps become the strings Kubernetes wants.
    assert spec.resources == {"google.com/tpu": "4", "cpu": "8", "memory": "64Gi"}
    assert spec.env == {"WANDB_PROJECT": "bert", "SEED": "7"}
    assert spec.labels == {"team": "nlp", "version": "2"}
    assert spec.node_selector == {"cloud.google.com/gke-tpu-topology": "2x2x2"}
    assert spec.tolerations == (
        {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    assert spec.pod_template == {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}
    jobspec.validate(spec)


def test_a_string_command_runs_through_sh_c(tmp_path: Path) -> None:
    path = write(tmp_path, "image: i\ncommand: python train.py && echo done\n")
    assert jobspec.load_file(path).command == ("/bin/sh", "-c", "python train.py && echo done")


def test_an_empty_file_is_an_empty_spec(tmp_path: Path) -> None:
    assert jobspec.load_file(write(tmp_path, "")) == JobSpec()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("replica: 2\n", "did you mean replicas?"),
        ("node_selector: {}\n", "did you mean nodeSelector?"),
        ("imgae: x\n", "did you mean image?"),
        ("zzz: 1\n", "known: name, generateName, image"),
    ],
)
def test_unknown_fields_are_refused_with_a_suggestion(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValidationError) as err:
        jobspec.load_file(path)
    message = str(err.value)
    assert "unknown field" in message
    assert expected in message
    assert path in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("replicas: two\n", "replicas: 'two' is not a whole number"),
        ("replicas: 2.5\n", "replicas: 2.5 is not a whole number"),
        ("replicas: true\n", "replicas: True is not a whole number"),
        ("name: [a]\n", "name: ['a'] is not a string"),
        ("image: 3\n", "image: 3 is not a string"),
        ("command: []\n", "command: a command is a string or a non-empty list"),
        ("command: {a: b}\n", "command: a command is a string or a non-empty list"),
        ("command: [python, [x]]\n", "is not a string"),
        ("env: [A=1]\n", "env: expected a mapping"),
        ("labels: team\n", "labels: expected a mapping"),
        ("env: {A: [1]}\n", "env.A: [1] is not a string"),
        ("env: {A: true}\n", "env.A: True is not a string"),
        ("tolerations: {key: x}\n", "tolerations: expected a list of tolerations"),
        ("podTemplate: [a]\n", "podTemplate: expected a pod template mapping"),
    ],
)
def test_wrong_types_name_the_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        jobspec.load_file(write(tmp_path, text))
    assert expected in str(err.value)
    assert err.value.exit_code == ExitCode.USAGE


def test_env_files_are_read_beside_the_spec_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "common.env").write_text("A=from-file\nB=from-file\nHOME_DIR\n")
    (tmp_path / "extra.env").write_text("C=extra\nA=extra\n")
    path = write(
        tmp_path,
        """\
        envFile: [conf/common.env, extra.env]
        env: {B: from-env}
        """,
    )
    spec = jobspec.load_file(path, environ={"HOME_DIR": "/home/alice"})
    assert dict(spec.env) == {
        "A": "extra",
        "B": "from-env",
        "C": "extra",
        "HOME_DIR": "/home/alice",
    }
    single = write(tmp_path, "envFile: extra.env\n", "single.yaml")
    assert dict(jobspec.load_file(single).env) == {"C": "extra", "A": "extra"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("envFile: missing.env\n", "job.yaml: envFile: cannot read"),
        ("envFile: [1]\n", "job.yaml: envFile: 1 is not a string"),
        ("envFile: bad.env\n", "job.yaml: envFile"),
    ],
)
def test_a_bad_env_file_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "bad.env").write_text("1X=y\n")
    with pytest.raises(UsageError) as caught:
        jobspec.load_file(write(tmp_path, text))
    assert expected in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        jobspec.load_file(write(tmp_path, "- name: x\n"))
    assert "a job spec is a mapping" in str(err.value)


def test_invalid_yaml_says_where(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        jobspec.load_file(write(tmp_path, "name: a\nimage: [unclosed\n"))
    assert "is not valid YAML at line" in str(err.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        jobspec.load_file(str(tmp_path / "nope.yaml"))
    assert "cannot read job spec" in str(err.value)
    assert err.value.exit_code == ExitCode.USAGE


# ---- flags over the file -------------------------------------------------------------
def test_flags_override_scalars_and_none_means_not_given(tmp_path: Path) -> None:
    base = jobspec.load_file(write(tmp_path, "name: a\nimage: old\nreplicas: 4\npriority: high\n"))
    spec = base.with_overrides(image="new", replicas=None, priority=None, name=None)
    assert (spec.name, spec.image, spec.replicas, spec.priority) == ("a", "new", 4, "high")


def test_flags_merge_into_maps_key_by_key(tmp_path: Path) -> None:
    base = jobspec.load_file(
        write(
            tmp_path,
            """\
            image: i
            labels: {team: nlp, stage: dev}
            env: {A: "1", B: "2"}
            resources: {google.com/tpu: 4, cpu: "8"}
            """,
        )
    )
    spec = base.with_overrides(
        labels={"stage": "prod"}, env={"C": "3"}, resources={"google.com/tpu": "8"}
    )
    assert spec.labels == {"team": "nlp", "stage": "prod"}
    assert spec.env == {"A": "1", "B": "2", "C": "3"}
    assert spec.resources == {"google.com/tpu": "8", "cpu": "8"}
    # The file's spec is untouched.
    assert base.labels == {"team": "nlp", "stage": "dev"}


def test_a_flag_command_replaces_the_files(tmp_path: Path) -> None:
    base = jobspec.load_file(write(tmp_path, "image: i\ncommand: [python, a.py]\n"))
    assert base.with_overrides(command=("python", "b.py")).command == ("python", "b.py")


def test_parse_pairs() -> None:
    assert jobspec.parse_pairs(["a=1", "b=x=y", "c="], "--env") == {"a": "1", "b": "x=y", "c": ""}
    for bad in ("novalue", "=v"):
        with pytest.raises(ValidationError) as err:
            jobspec.parse_pairs([bad], "--label")
        assert str(err.value).startswith("--label: ")
        assert "is not KEY=VALUE" in str(err.value)


# ---- validate ------------------------------------------------------------------------
def test_a_minimal_spec_is_valid() -> None:
    jobspec.validate(good())
    jobspec.validate(JobSpec(generate_name="bert-", image="i"))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": ""}, "name: a job needs a name"),
        ({"name": "Bert"}, "not a valid job name"),
        ({"name": "a" * 53}, "at most 52"),
        ({"image": ""}, "image: a job needs an image"),
        ({"replicas": 0}, "replicas: 0 is not a positive number"),
        ({"replicas": -3}, "replicas: -3 is not a positive number"),
        ({"priority": "urgent"}, "unknown priority 'urgent'"),
        ({"labels": {"ant.dev/job": "x"}}, "reserved"),
        ({"labels": {"team": "a b"}}, "not a valid label value"),
        ({"meta": {"a/b": "x"}}, "meta keys have no prefix"),
        ({"node_selector": {"zone": "x" * 64}}, "at most 63"),
        ({"node_selector": {"bad key": "x"}}, "not a valid key"),
        ({"resources": {"google.com/tpu": "four"}}, "'four' is not a quantity"),
        ({"resources": {"memory": "64 Gi"}}, "is not a quantity"),
        ({"resources": {"cpu": "-1"}}, "is not a quantity"),
        ({"resources": {"cpu": "1\n"}}, "is not a quantity"),
        ({"env": {"1A": "x"}}, "not a valid environment variable name"),
        ({"env": {"ANT_JOB": "x"}}, "ANT_* variables are set by ant"),
    ],
)
def test_invalid_specs_fail_with_one_line(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        jobspec.validate(good(**changes))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_trailing_newline_is_not_accepted_by_a_regex_end_anchor() -> None:
    with pytest.raises(ValidationError, match="not a valid environment variable name"):
        jobspec.validate(good(env={"A\n": "x"}))


@pytest.mark.parametrize("qty", ["4", "500m", "16Gi", "1.5", "1e3", "0.5Ti", ".5", "+2"])
def test_quantities(qty: str) -> None:
    jobspec.validate(good(resources={"cpu": qty}))


def test_a_prefix_is_checked_when_there_is_no_name() -> None:
    with pytest.raises(ValidationError) as err:
        jobspec.validate(JobSpec(generate_name="a" * 48, image="i"))
    assert err.value.field == "generate-name"
    # With a name, the prefix is not used.
    jobspec.validate(JobSpec(name="x", generate_name="a" * 48, image="i"))


def test_the_end_policy_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: b\nimage: i\nmaxRestarts: 1\nonFailure: fail\nafter: [a, c]\nttl: 1d12h\n"
    )
    loaded = jobspec.load_file(str(path))
    assert (loaded.max_restarts, loaded.on_failure, loaded.after, loaded.ttl_seconds) == (
        1,
        "fail",
        ("a", "c"),
        129600,
    )
    jobspec.validate(loaded)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"on_failure": "retry"}, "on-failure"),
        ({"max_restarts": -1}, "max-restarts"),
        ({"after": ("Bad_Name",)}, "after"),
        ({"after": ("b",)}, "after"),
        ({"ttl_seconds": 0}, "ttl"),
    ],
)
def test_bad_end_policies_name_their_flag(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        jobspec.validate(JobSpec(name="b", image="i").with_overrides(**changes))
    assert e.value.field == field


def test_durations_round_trip() -> None:
    for text, seconds in (("7d", 604800), ("1h30m", 5400), ("45s", 45)):
        assert durations.parse_duration(text, "--ttl") == seconds
        assert durations.format_duration(seconds) == text
    with pytest.raises(ValidationError):
        durations.parse_duration("7 days", "--ttl")
    assert jobspec.parse_after("a, b") == ("a", "b")
    with pytest.raises(ValidationError):
        jobspec.parse_after("a,,b")
