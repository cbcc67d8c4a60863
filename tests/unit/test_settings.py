"""The config file (ant.cli.settings): precedence flag > variable > file > built-in, per-
context sections, validation with one clear line, and `ant config view|set|unset`.

`ant submit --dry-run` needs no cluster and prints the StatefulSet: a window on which
namespace, image, priority and resources were chosen."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ant.errors import ExitCode
from tests.helpers import Result, run_ant
from tests.unit.test_cli_main import kubeconfig  # noqa: F401  (a fixture)


def ant(tmp_path: Path, *argv: str, **vars: str) -> Result:
    return run_ant(argv, vars={"ANT_CONFIG": str(tmp_path / "config.yaml"), **vars})


def write(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.yaml").write_text(textwrap.dedent(text))


def submitted(tmp_path: Path, *argv: str, **vars: str) -> dict[str, Any]:
    """The StatefulSet a dry-run submit would create."""
    result = ant(tmp_path, "submit", "--dry-run", "-o", "json", "--name", "j", *argv, **vars)
    assert result.code == 0, result.err
    return dict(json.loads(result.out)["items"][-1])


def main_container(sts: dict[str, Any]) -> dict[str, Any]:
    return dict(sts["spec"]["template"]["spec"]["containers"][0])


def test_flag_beats_variable_beats_file_beats_built_in(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
) -> None:
    kc = {"ANT_KUBECONFIG": str(kubeconfig)}
    assert submitted(tmp_path, "--image", "i", **kc)["metadata"]["namespace"] == "ns-one"
    write(tmp_path, "namespace: from-file\n")
    assert submitted(tmp_path, "--image", "i", **kc)["metadata"]["namespace"] == "from-file"
    sts = submitted(tmp_path, "--image", "i", ANT_NAMESPACE="from-env", **kc)
    assert sts["metadata"]["namespace"] == "from-env"
    sts = submitted(tmp_path, "--image", "i", "-n", "from-flag", ANT_NAMESPACE="from-env", **kc)
    assert sts["metadata"]["namespace"] == "from-flag"


def test_a_contexts_section_wins_over_the_top_for_that_context(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
) -> None:
    write(
        tmp_path,
        """\
        namespace: top
        image: ghcr.io/lab/train:1.4
        contexts:
          two: {namespace: two-ns, image: ghcr.io/lab/train:2.0, priority: opportunistic}
        """,
    )
    kc = {"ANT_KUBECONFIG": str(kubeconfig)}
    one = submitted(tmp_path, **kc)  # the kubeconfig's current context: one
    assert (one["metadata"]["namespace"], main_container(one)["image"]) == (
        "top",
        "ghcr.io/lab/train:1.4",
    )
    two = submitted(tmp_path, "--context", "two", **kc)
    assert two["metadata"]["namespace"] == "two-ns"
    assert main_container(two)["image"] == "ghcr.io/lab/train:2.0"
    assert two["metadata"]["labels"]["ant.dev/priority"] == "opportunistic"
    # The context from the file picks its section too.
    write(tmp_path, "context: two\ncontexts:\n  two: {namespace: two-ns}\n")
    assert submitted(tmp_path, "--image", "i", **kc)["metadata"]["namespace"] == "two-ns"


def test_submit_defaults_sit_below_the_job_file_and_the_flags(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        image: from-config
        priority: opportunistic
        resources: {tpus: 4, cpu: 8, memory: 64Gi}
        """,
    )
    sts = submitted(tmp_path)
    requests = main_container(sts)["resources"]["requests"]
    assert main_container(sts)["image"] == "from-config"
    assert requests == {"google.com/tpu": "4", "cpu": "8", "memory": "64Gi"}
    assert sts["metadata"]["labels"]["ant.dev/priority"] == "opportunistic"
    (tmp_path / "job.yaml").write_text("image: from-file\npriority: normal\n")
    sts = submitted(tmp_path, str(tmp_path / "job.yaml"), "--tpus", "1")
    assert main_container(sts)["image"] == "from-file"
    assert sts["metadata"]["labels"]["ant.dev/priority"] == "normal"
    assert main_container(sts)["resources"]["requests"]["google.com/tpu"] == "1"
    assert main_container(sts)["resources"]["requests"]["cpu"] == "8"


def test_the_queue_default_sits_below_ant_queue_and_the_flag(tmp_path: Path) -> None:
    write(tmp_path, "queue: from-file\n")
    label = "kueue.x-k8s.io/queue-name"
    argv = ("--image", "i", "--replicas", "2")
    assert submitted(tmp_path, *argv)["metadata"]["labels"][label] == "from-file"
    sts = submitted(tmp_path, *argv, ANT_QUEUE="from-env")
    assert sts["metadata"]["labels"][label] == "from-env"
    sts = submitted(tmp_path, *argv, "--queue", "from-flag", ANT_QUEUE="from-env")
    assert sts["metadata"]["labels"][label] == "from-flag"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("nmespace: x\n", "nmespace: unknown key (did you mean namespace?)"),
        ("priority: top\n", "priority: unknown priority 'top' (use one of opportunistic, "),
        ("resources: {tpu: 4}\n", "resources.tpu: unknown key (did you mean tpus?)"),
        ("resources: {cpu: lots}\n", "resources.cpu: 'lots' is not a quantity"),
        ("contexts: {a: {context: b}}\n", "contexts.a.context: unknown key"),
        ("namespace: Bad_NS\n", "namespace: 'Bad_NS' is not a valid namespace"),
        ("clusters: a\n", "clusters: a list of kubeconfig context names"),
        ("[1, 2]\n", "a config file is a mapping of keys"),
        ("a: [\n", "is not valid YAML at line"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key_and_exit_2(
    tmp_path: Path, text: str, line: str
) -> None:
    write(tmp_path, text)
    result = ant(tmp_path, "submit", "--dry-run", "--name", "j")
    assert result.code == ExitCode.USAGE, result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("ant: error: ")
    assert line in result.err_lines[0]
    assert str(tmp_path / "config.yaml") in result.err_lines[0]


def test_config_set_view_unset(tmp_path: Path) -> None:
    assert ant(tmp_path, "config", "view").err.endswith(
        "(no settings: every default is ant's own)\n"
    )
    for key, value in [
        ("namespace", "research"),
        ("resources.tpus", "4"),
        ("contexts.alice.priority", "opportunistic"),
        ("clusters", "a,b"),
        ("contexts.b.cache", "https://cache.b:8443"),
    ]:
        result = ant(tmp_path, "config", "set", key, value)
        assert (result.code, result.out) == (0, f"{key} set in {tmp_path / 'config.yaml'}\n")
    shown = ant(tmp_path, "config", "view")
    import yaml

    assert yaml.safe_load(shown.out) == {
        "namespace": "research",
        "resources": {"tpus": 4},
        "contexts": {
            "alice": {"priority": "opportunistic"},
            "b": {"cache": "https://cache.b:8443"},
        },
        "clusters": ["a", "b"],
    }
    assert (tmp_path / "config.yaml").stat().st_mode & 0o777 == 0o600
    refused = ant(tmp_path, "config", "set", "contexts.alice.namepsace", "x")
    assert (refused.code, refused.err_lines) == (
        ExitCode.USAGE,
        [
            "ant: error: contexts.alice.namepsace: unknown key (did you mean namespace?)",
        ],
    )
    for key, value, line in [
        (
            "cache",
            "https://c:8443",
            "ant: error: cache: is set per cluster (set contexts.CONTEXT.cache for each context)",
        ),
        (
            "contexts.b.cache",
            "cache.b:8443",
            f"ant: error: {tmp_path / 'config.yaml'}: contexts.b.cache: 'cache.b:8443' is not "
            "an http(s) URL (e.g. https://host:8443)",
        ),
    ]:
        refused = ant(tmp_path, "config", "set", key, value)
        assert (refused.code, refused.err_lines) == (ExitCode.USAGE, [line])
    ant(tmp_path, "config", "unset", "contexts.alice.priority")
    ant(tmp_path, "config", "unset", "contexts.b.cache")
    assert "contexts" not in yaml.safe_load(ant(tmp_path, "config", "view").out)


def test_no_file_costs_no_yaml_import(tmp_path: Path) -> None:
    """Start-up: without a file nothing is parsed (and with flags, nothing is read)."""
    import subprocess
    import sys

    code = (
        "import sys; from ant.cli.main import run; "
        "run(['submit', '--dry-run', '--name', 'j', '--image', 'i', '-n', 'x', '-o', 'name']);"
        "print('yaml' in sys.modules)"
    )
    env = {"ANT_CONFIG": str(tmp_path / "missing.yaml"), "PATH": "/usr/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False"
