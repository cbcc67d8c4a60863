"""Several clusters without one (ant.cli.clusters): the CLUSTER/JOB grammar, the choice of
clusters, and asking them all at once with a timeout each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ant.cli.clusters import parse_job_ref
from ant.cli.command_line import GlobalOptions, hoist_global_options, resolve, typed_values
from ant.errors import ExitCode
from tests.helpers import run_ant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bert", (None, "bert")),
        ("dev-2/bert", ("dev-2", "bert")),
        ("alice@dev-2/bert", ("alice@dev-2", "bert")),
        (
            "arn:aws:eks:us-west-2:1:cluster/lab/bert",
            ("arn:aws:eks:us-west-2:1:cluster/lab", "bert"),
        ),
        ("statefulset/web", (None, "statefulset/web")),
        ("dev-2/sts/web", ("dev-2", "sts/web")),
    ],
)
def test_cluster_slash_job(text: str, expected: tuple[str | None, str]) -> None:
    assert parse_job_ref(text) == expected


def test_the_cluster_options_are_global_options() -> None:
    argv = ["list", "--clusters", "a,b", "--all-clusters"]
    assert hoist_global_options(argv) == ["--clusters", "a,b", "--all-clusters", "list"]
    assert typed_values(hoist_global_options(argv)) == {"clusters": "a,b", "all_clusters": 1}
    assert resolve({}, {"ANT_CLUSTERS": "x", "ANT_ALL_CLUSTERS": "1"}) == GlobalOptions(
        clusters="x", all_clusters=True
    )
    assert resolve({}, {"ANT_ALL_CLUSTERS": "0"}) == GlobalOptions()


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- {name: quiet, cluster: {server: "https://127.0.0.1:%d"}}
- {name: closed, cluster: {server: "https://127.0.0.1:%d"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: quiet, context: {cluster: quiet, user: u, namespace: research}}
- {name: closed, context: {cluster: closed, user: u, namespace: research}}
current-context: quiet
"""


def test_clusters_that_do_not_answer_give_a_partial_answer_in_time(tmp_path: Path) -> None:
    import socket

    quiet = socket.socket()  # accepts connections (the kernel's backlog), never answers
    quiet.bind(("127.0.0.1", 0))
    quiet.listen(8)
    closed = socket.socket()  # bound, never listening: connection refused
    closed.bind(("127.0.0.1", 0))
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG % (quiet.getsockname()[1], closed.getsockname()[1]))
    try:
        started = time.monotonic()
        result = run_ant(
            ["--all-clusters", "list", "--all-users", "-o", "json"],
            vars={"KUBECONFIG": str(path), "ANT_CLUSTER_TIMEOUT": "1s"},
        )
        elapsed = time.monotonic() - started
    finally:
        quiet.close()
        closed.close()
    assert result.code == ExitCode.PARTIAL, result
    assert elapsed < 1 + 2, elapsed
    document = result.json()
    assert document["items"] == []
    assert [u["cluster"] for u in document["unanswered"]] == ["quiet", "closed"]
    assert result.err_lines[-1].startswith(
        "ant: error: partial answer: no answer from quiet, closed"
    )


def test_a_command_across_clusters_parses_the_kubeconfig_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from ant.kube import config

    parsed: list[Path] = []
    read_yaml = config._read_yaml
    monkeypatch.setattr(config, "_read_yaml", lambda p: parsed.append(p) or read_yaml(p))
    closed = socket.socket()  # bound, never listening: connection refused
    closed.bind(("127.0.0.1", 0))
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG % (closed.getsockname()[1], closed.getsockname()[1]))
    with closed:
        result = run_ant(["--all-clusters", "list", "--all-users"], vars={"KUBECONFIG": str(path)})
    assert result.code == ExitCode.PARTIAL, result
    assert "no answer from quiet, closed" in result.err  # each cluster's own context
    assert parsed == [path]


def test_an_unknown_cluster_is_a_usage_error_that_names_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG % (1, 2))
    listed = run_ant(["--clusters", "quiet,nope", "list"], vars={"KUBECONFIG": str(path)})
    assert listed.code == ExitCode.USAGE
    assert "no context 'nope' in the kubeconfig (known: quiet, closed)" in listed.err
    shown = run_ant(["show", "nope/bert"], vars={"KUBECONFIG": str(path)})
    assert shown.code == ExitCode.USAGE
    assert shown.err_lines == [
        "ant: error: 'nope/bert' is not a job name nor CLUSTER/JOB: no context 'nope' in the "
        "kubeconfig ('kubectl config get-contexts' lists them)"
    ]


def test_context_on_the_command_line_beats_ant_clusters() -> None:
    env = {"ANT_CLUSTERS": "a,b", "ANT_ALL_CLUSTERS": "1"}
    assert resolve({"context": "c"}, env) == GlobalOptions(context="c")
    assert resolve({"context": "c", "clusters": "a"}, env).clusters == "a"
    assert resolve({}, env).clusters == "a,b"


def test_the_config_files_clusters_sit_below_the_flag_and_the_variable(tmp_path: Path) -> None:
    from ant.cli.settings import Settings

    settings = Settings(tmp_path / "config.yaml", {"clusters": ["x", "y"]})
    assert resolve({}, {}, settings).clusters == "x,y"
    assert resolve({}, {"ANT_CLUSTERS": "a"}, settings).clusters == "a"
    assert resolve({"clusters": "b"}, {"ANT_CLUSTERS": "a"}, settings).clusters == "b"
    assert resolve({"context": "c"}, {}, settings) == GlobalOptions(context="c")


def test_every_command_that_takes_a_job_finds_its_cluster() -> None:
    """A job argument may be CLUSTER/JOB: a command that takes one must locate it before
    the name reaches a request path."""
    commands = Path(__file__).resolve().parents[2] / "ant" / "cli" / "commands"
    takes_a_job = [
        p
        for p in commands.glob("*.py")
        if any(a in p.read_text() for a in ("JobName", "JobNames", "JobOrStatefulSet"))
    ]
    assert takes_a_job
    assert [p.name for p in takes_a_job if "locate" not in p.read_text()] == []
