"""The CLI entry point without a cluster: global options anywhere, `--`, exit codes, errors
as one line, ANT_* variables from the injected environment, plain output when piped.

`--dry-run` submits need no cluster at all and print the manifests, which makes them a
window on how the command line was understood (namespace, command, labels)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ant.cli.command_line import hoist_global_options, split_trailing_command
from ant.cli.environment import Environment
from ant.cli.main import run
from ant.cli.terminal import Column, Terminal
from ant.errors import ExitCode, ValidationError
from tests.helpers import Result, run_ant

REPO = Path(__file__).resolve().parents[2]


def ant(*argv: str, vars: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    return run_ant(argv, vars=vars, cwd=cwd)


def dry_run(*argv: str, **kwargs: Any) -> dict[str, Any]:
    """The StatefulSet that `ant submit --dry-run` prints (after the Service; a gang job's
    PodGroup follows it)."""
    result = ant(*argv, **kwargs)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["kind"] == "List"
    service, sts, *podgroup = doc["items"]
    assert [o["kind"] for o in podgroup] in ([], ["PodGroup"])
    assert service["metadata"]["namespace"] == sts["metadata"]["namespace"]
    return dict(sts)


SUBMIT = ("submit", "--dry-run", "-o", "json", "--name", "bert", "--image", "i")


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """Two contexts with their own namespaces, on a server nothing listens on."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: Config
            clusters:
            - name: nowhere
              cluster: {server: "https://127.0.0.1:9"}
            users:
            - name: u
              user: {token: t}
            contexts:
            - name: one
              context: {cluster: nowhere, user: u, namespace: ns-one}
            - name: two
              context: {cluster: nowhere, user: u, namespace: ns-two}
            current-context: one
            """
        )
    )
    return path


# ---- global options anywhere ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list", "-n", "x"], ["-n", "x", "list"]),
        (["list", "--namespace=x", "-A"], ["--namespace=x", "list", "-A"]),
        (["show", "j", "--context", "c", "-v"], ["--context", "c", "-v", "show", "j"]),
        (["-n", "x", "list"], ["-n", "x", "list"]),
        (["logs", "j", "--kubeconfig", "k", "-f"], ["--kubeconfig", "k", "logs", "j", "-f"]),
    ],
)
def test_hoisting(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_split_trailing_command() -> None:
    assert split_trailing_command(["submit", "--", "python", "-n", "3"]) == (
        ["submit"],
        ("python", "-n", "3"),
    )
    assert split_trailing_command(["list"]) == (["list"], ())


def test_namespace_after_the_command_is_the_same_as_before() -> None:
    after = dry_run(*SUBMIT, "-n", "x")
    before = dry_run("-n", "x", *SUBMIT)
    long_form = dry_run(*SUBMIT, "--namespace=x")
    assert after["metadata"]["namespace"] == "x"
    assert before["metadata"]["namespace"] == "x"
    assert long_form["metadata"]["namespace"] == "x"
    after["metadata"]["annotations"].pop("ant.dev/submitted-at")
    before["metadata"]["annotations"].pop("ant.dev/submitted-at")
    after["metadata"]["annotations"].pop("ant.dev/command-line")
    before["metadata"]["annotations"].pop("ant.dev/command-line")
    assert after == before


def test_context_and_kubeconfig_after_the_command(kubeconfig: Path) -> None:
    sts = dry_run(*SUBMIT, "--kubeconfig", str(kubeconfig), "--context", "two")
    assert sts["metadata"]["namespace"] == "ns-two"
    sts = dry_run(*SUBMIT, f"--kubeconfig={kubeconfig}")
    assert sts["metadata"]["namespace"] == "ns-one"
    sts = dry_run(*SUBMIT, "--kubeconfig", str(kubeconfig), "--context", "two", "-n", "x")
    assert sts["metadata"]["namespace"] == "x"


def test_everything_after_double_dash_is_the_jobs_command() -> None:
    sts = dry_run(*SUBMIT, "--", "python", "train.py", "-n", "5", "--context", "c", "-v")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "train.py", "-n", "5", "--context", "c", "-v"]
    assert sts["metadata"]["namespace"] == "default"  # `-n 5` was not ant's
    assert sts["metadata"]["annotations"]["ant.dev/command-line"].endswith(
        "-- python train.py -n 5 --context c -v"
    )


def test_double_dash_on_a_command_that_takes_no_command() -> None:
    result = ant("list", "--", "python", "train.py")
    assert result.code == ExitCode.USAGE
    assert result.err_lines == [
        "ant: error: unexpected arguments after '--': python train.py "
        "(only exec, submit and update take a command)"
    ]


# ---- habits from other tools --------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["cancel", "bert"],
            "ant has no 'cancel' command: 'ant delete JOB' stops a job and removes it",
        ),
        (
            ["-n", "x", "status"],
            "ant has no 'status' command: 'ant list' shows your jobs, 'ant show JOB' one of them",
        ),
        (
            ["submit", "--dry-run", "--name", "b", "--image", "i", "python", "train.py"],
            "'python train.py' looks like the job's command: put it after '--' "
            "(ant submit [OPTIONS] -- python train.py)",
        ),
        (
            ["update", "bert", "python", "train.py"],
            "'python train.py' looks like the job's command: put it after '--' "
            "(ant update [OPTIONS] -- python train.py)",
        ),
        (
            ["submit", "--dry-run", "--name", "b", "--image", "i", "python"],
            "cannot read job spec python: No such file or directory "
            "(if 'python' is the job's command, put it after '--': ant submit ... -- python)",
        ),
        (
            ["submit", "--image", "i", "python", "train.py", "--lr", "3"],
            "No such option: --lr (if it is the job command's, put that command after '--': "
            "ant submit [OPTIONS] -- COMMAND [ARGS]...)",
        ),
    ],
)
def test_other_tools_habits_get_a_one_line_hint(argv: list[str], line: str) -> None:
    result = ant(*argv)
    assert (result.code, result.err_lines, result.out) == (
        ExitCode.USAGE,
        [f"ant: error: {line}"],
        "",
    )


# ---- ANT_* variables -----------------------------------------------------------------
def test_global_options_come_from_ant_variables_of_the_injected_environment(
    kubeconfig: Path,
) -> None:
    assert "ANT_NAMESPACE" not in os.environ
    sts = dry_run(*SUBMIT, vars={"ANT_NAMESPACE": "from-env"})
    assert sts["metadata"]["namespace"] == "from-env"
    sts = dry_run(*SUBMIT, vars={"ANT_KUBECONFIG": str(kubeconfig), "ANT_CONTEXT": "two"})
    assert sts["metadata"]["namespace"] == "ns-two"
    # A flag beats its variable.
    sts = dry_run(*SUBMIT, "-n", "flag", vars={"ANT_NAMESPACE": "from-env"})
    assert sts["metadata"]["namespace"] == "flag"


def test_help_shows_each_global_options_variable() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ant", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    for option, var in [
        ("--context", "ANT_CONTEXT"),
        ("--kubeconfig", "ANT_KUBECONFIG"),
        ("--namespace", "ANT_NAMESPACE"),
        ("--verbose", "ANT_VERBOSE"),
    ]:
        line = next(ln for ln in proc.stdout.splitlines() if option in ln)
        assert f"env var: {var}" in line, line


# ---- errors: one line, exit code, no traceback --------------------------------------------
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["list", "--bogus"], "No such option: --bogus"),
        (["show"], "Missing argument"),
        (["list", "-o", "xml"], "'xml'"),
        (["show", "j", "-o", "name"], "'name' is not one of table, json, yaml"),
        (["submit", "--replicas", "abc"], "--replicas"),
        (["list", "--status", "Bogus"], "unknown status Bogus"),
        (["list", "--all-users", "--user", "bob"], "contradict"),
        (["list", "--since", "yesterday"], "'yesterday' is not a duration"),
        (["delete"], "name the jobs to delete"),
        (["delete", "j", "--mine"], "name the jobs to delete"),
        (["logs", "j", "--replica", "1", "--all"], "contradict"),
        (["submit", "--dry-run", "--image", "i"], "a job needs a name"),
        (["submit", "--dry-run", "--name", "Bert", "--image", "i"], "not a valid job name"),
        (["submit", "--dry-run", "--name", "b", "--image", "i", "--label", "x"], "KEY=VALUE"),
        (["submit", "--dry-run", "--name", "b", "--image", "i", "--replicas", "-1"], "positive"),
        (["submit", "--dry-run", "--name", "b", "--image", "i", "--priority", "top"], "priority"),
        (["submit", "/nonexistent/job.yaml", "--dry-run"], "cannot read job spec"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], fragment: str) -> None:
    result = ant(*argv)
    assert result.code == ExitCode.USAGE, result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("ant: error: ")
    assert fragment in result.err
    assert "Traceback" not in result.err
    assert result.out == ""


def test_ant_alone_shows_the_help_and_exits_2() -> None:
    result = ant()
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("Usage: ant [OPTIONS] COMMAND")
    assert "ant: error" not in result.err
    assert "submit" in result.err


def test_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ant", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("ant ")


def test_ant_debug_shows_the_traceback() -> None:
    argv = ["submit", "--dry-run", "--name", "Bert", "--image", "i"]
    with pytest.raises(ValidationError):
        ant(*argv, vars={"ANT_DEBUG": "1"})
    assert ant(*argv, vars={"ANT_DEBUG": "0"}).code == ExitCode.USAGE

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANT_")}
    plain = subprocess.run(
        [sys.executable, "-m", "ant", *argv], capture_output=True, text=True, env=env, check=False
    )
    debug = subprocess.run(
        [sys.executable, "-m", "ant", *argv],
        capture_output=True,
        text=True,
        env={**env, "ANT_DEBUG": "1"},
        check=False,
    )
    assert plain.returncode == ExitCode.USAGE
    assert plain.stderr.count("\n") == 1
    assert "Traceback" not in plain.stderr
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ValidationError" in debug.stderr


def test_unreachable_cluster_is_exit_6(kubeconfig: Path) -> None:
    result = ant("list", "--kubeconfig", str(kubeconfig))
    assert result.code == ExitCode.UNAVAILABLE
    assert len(result.err_lines) == 1
    assert "cannot reach 127.0.0.1:9" in result.err


def test_bad_kubeconfig_is_exit_2(tmp_path: Path, kubeconfig: Path) -> None:
    result = ant("list", "--kubeconfig", str(tmp_path / "missing"))
    assert result.code == ExitCode.USAGE
    assert "is not a readable file" in result.err
    result = ant("list", "--kubeconfig", str(kubeconfig), "--context", "three")
    assert result.code == ExitCode.USAGE
    assert len(result.err_lines) == 1


def test_a_huge_annotation_is_refused_before_contacting_the_cluster(kubeconfig: Path) -> None:
    started = time.monotonic()
    result = ant(
        "submit",
        "--kubeconfig",
        str(kubeconfig),
        "--name",
        "bert",
        "--image",
        "i",
        "--description",
        "x" * (256 * 1024),
    )
    assert result.code == ExitCode.USAGE, result.err
    assert "Kubernetes allows 262,144" in result.err
    assert "cannot reach" not in result.err
    assert time.monotonic() - started < 2  # no connection attempts, no retries


class Interrupting(io.StringIO):
    def write(self, s: str) -> int:
        raise KeyboardInterrupt


def test_interrupted_is_130_without_a_traceback() -> None:
    err = io.StringIO()
    env = Environment(stdin=io.StringIO(""), stdout=Interrupting(), stderr=err, vars={})
    assert run([*SUBMIT], env=env) == ExitCode.INTERRUPTED
    assert "Traceback" not in err.getvalue()


# ---- dry run -------------------------------------------------------------------------------
def test_dry_run_needs_no_kubeconfig_and_marks_the_local_user(tmp_path: Path) -> None:
    result = ant(*SUBMIT[:3], "yaml", *SUBMIT[4:], "--tpus", "4", vars={"USER": "alice"})
    assert result.code == 0, result.err
    import yaml

    doc = yaml.safe_load(result.out)
    sts = doc["items"][1]
    assert sts["metadata"]["annotations"]["ant.dev/created-by-full"] == "alice"
    limits = sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"google.com/tpu": "4"}


def test_dry_run_with_output_name_prints_only_the_names_it_would_create() -> None:
    single = ant("submit", "--dry-run", "-o", "name", "--name", "bert", "--image", "i")
    assert (single.code, single.out) == (0, "bert\n")
    sweep = ant(
        "submit", "--dry-run", "-o", "name", "--name", "bert", "--image", "i", "--sweep", "lr=1,2"
    )
    names = sweep.out.split()
    assert len(names) == 2
    assert all(n.startswith("bert-") for n in names)


def test_submit_from_a_file_with_flags_over_it(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        textwrap.dedent(
            """\
            name: from-file
            image: old
            replicas: 3
            command: python train.py
            labels: {team: nlp, stage: dev}
            """
        )
    )
    sts = dry_run(
        "submit", str(job), "--dry-run", "-o", "json", "--image", "new", "--label", "stage=prod"
    )
    assert sts["metadata"]["name"] == "from-file"
    assert sts["spec"]["replicas"] == 3
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "new"
    assert container["command"] == ["/bin/sh", "-c", "python train.py"]
    assert sts["metadata"]["labels"]["team"] == "nlp"
    assert sts["metadata"]["labels"]["stage"] == "prod"


def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nimage: i\nreplica: 3\n")
    result = ant("submit", str(job), "--dry-run")
    assert result.code == ExitCode.USAGE
    assert result.err_lines == [
        f"ant: error: {job}: replica: unknown field (did you mean replicas?)"
    ]


# ---- output ----------------------------------------------------------------------------
class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tables_are_plain_and_stable_when_piped() -> None:
    out = io.StringIO()
    terminal = Terminal(Environment(stdout=out, stderr=io.StringIO(), vars={}))
    terminal.table([Column("NAME"), Column("STATUS")], [["a", "Running"], ["bert-2", "Pending"]])
    assert out.getvalue() == "NAME     STATUS\na        Running\nbert-2   Pending\n"


def test_a_piped_tables_columns_fit_control_characters_written_out() -> None:
    out = io.StringIO()
    terminal = Terminal(Environment(stdout=out, stderr=io.StringIO(), vars={}))
    rows = [["a", "x", "Running"], ["b", "\x1b", "Pending "]]
    terminal.table([Column("NAME"), Column("NOTE"), Column("STATUS")], rows)
    assert out.getvalue().splitlines() == [
        "NAME   NOTE   STATUS",
        "a      x      Running",
        "b      \\x1b   Pending",  # its width is that of what is shown; no trailing space
    ]
    out.truncate(0)
    out.seek(0)
    terminal.table([Column("NAME")], [["a"], ["bert"]])
    assert out.getvalue() == "NAME\na\nbert\n"


def test_colour_on_a_terminal_unless_no_color() -> None:
    rows = [["a", "Running"]]
    columns = [Column("NAME"), Column("STATUS", styles={"Running": "green"})]

    coloured = TTY()
    Terminal(Environment(stdout=coloured, stderr=TTY(), vars={"TERM": "xterm"})).table(
        columns, rows
    )
    assert "\x1b[" in coloured.getvalue()

    plain = TTY()
    Terminal(Environment(stdout=plain, stderr=TTY(), vars={"NO_COLOR": "", "TERM": "xterm"})).table(
        columns, rows
    )
    assert "\x1b[" not in plain.getvalue()
    assert "Running" in plain.getvalue()

    err = TTY()
    Terminal(Environment(stdout=TTY(), stderr=err, vars={"NO_COLOR": "1"})).error("boom")
    assert err.getvalue() == "ant: error: boom\n"


def test_completion_scripts_are_up_to_date() -> None:
    """The same check as `make completions-check`."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gencompletions.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
