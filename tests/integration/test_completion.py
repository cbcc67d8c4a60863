"""Shell completion, as a shell runs it: `ant` in a subprocess with `_ANT_COMPLETE` set.

Job names come from the dev cluster (your jobs in the namespace); a slow, unreachable or
refusing cluster completes nothing, quickly, and never prints a traceback at the prompt.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ant.cli.environment import Environment
from ant.cli.main import run
from ant.jobs.model import JobStatus

if TYPE_CHECKING:
    from tests.conftest import DevCluster

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("ant_priorities")]

REPO = Path(__file__).resolve().parents[2]


def complete(
    line: str, shell: str = "bash", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """What `ant` answers when the shell asks to complete `line` (the cursor at its end)."""
    words = shlex.split(line)
    extra = {"_ANT_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        # bash passes "${COMP_WORDS[*]}": the words joined by spaces, an empty last word
        # when the cursor follows a space.
        cword = len(words) if line.endswith(" ") else len(words) - 1
        extra |= {"COMP_WORDS": line, "COMP_CWORD": str(cword)}
    else:
        extra["_TYPER_COMPLETE_ARGS"] = line
        if shell == "fish":
            extra["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return subprocess.run(
        [sys.executable, "-m", "ant"],
        env={**os.environ, **extra, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=REPO,
    )


def suggestions(line: str, **kwargs: object) -> list[str]:
    proc = complete(line, **kwargs)  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc.stdout.split()


def submit(devcluster: DevCluster, user: str, namespace: str, name: str, *flags: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--kubeconfig", str(devcluster.kubeconfig), "--context", user, "-n", namespace]
    argv += ["submit", "--name", name, "--image", "busybox", *flags]
    env = Environment(stdin=io.StringIO(""), stdout=out, stderr=err, vars={"NO_COLOR": "1"})
    assert run(argv, env=env) == 0, err.getvalue()


@pytest.fixture
def jobs(devcluster: DevCluster, namespace: str) -> str:
    """alice's train-a and train-b (described) and bob's train-bob, in a fresh namespace.
    They request no TPUs; the namespace goes with its pods."""
    submit(devcluster, "alice", namespace, "train-a", "--description", "first\ttry")
    submit(devcluster, "alice", namespace, "train-b")
    submit(devcluster, "bob", namespace, "train-bob")
    return namespace


def test_job_names_are_the_users_jobs_in_the_namespace(devcluster: DevCluster, jobs: str) -> None:
    kc = devcluster.kubeconfig
    for command in ("show", "logs", "restart", "delete"):
        line = f"ant --kubeconfig {kc} --context alice -n {jobs} {command} "
        assert suggestions(line) == ["train-a", "train-b"], command
    line = f"ant --kubeconfig {kc} --context bob -n {jobs} show "
    assert suggestions(line) == ["train-bob"]


def test_the_typed_prefix_filters(devcluster: DevCluster, jobs: str) -> None:
    kc = devcluster.kubeconfig
    assert suggestions(f"ant --kubeconfig {kc} --context alice -n {jobs} logs train-b") == [
        "train-b"
    ]
    assert suggestions(f"ant --kubeconfig {kc} --context alice -n {jobs} logs x") == []


def test_global_options_after_the_command_and_from_the_environment(
    devcluster: DevCluster, jobs: str
) -> None:
    kc = devcluster.kubeconfig
    after = f"ant show --kubeconfig {kc} --context alice --namespace={jobs} "
    assert suggestions(after) == ["train-a", "train-b"]
    env = {"ANT_KUBECONFIG": str(kc), "ANT_CONTEXT": "bob", "ANT_NAMESPACE": jobs}
    assert suggestions("ant restart ", env=env) == ["train-bob"]
    # A flag on the line beats the variable.
    assert suggestions("ant restart --context alice ", env=env) == ["train-a", "train-b"]


def test_delete_does_not_offer_names_already_typed(devcluster: DevCluster, jobs: str) -> None:
    line = f"ant --kubeconfig {devcluster.kubeconfig} --context alice -n {jobs} delete train-a "
    assert suggestions(line) == ["train-b"]


def test_zsh_and_fish_get_the_description_too(devcluster: DevCluster, jobs: str) -> None:
    line = f"ant --kubeconfig {devcluster.kubeconfig} --context alice -n {jobs} show "
    zsh = complete(line, shell="zsh")
    assert zsh.returncode == 0
    assert zsh.stdout.strip() == """_arguments '*: :(("train-a":"first try"\n"train-b"))'"""
    fish = complete(line, shell="fish")
    assert fish.returncode == 0
    assert fish.stdout.splitlines() == ["train-a\tfirst try", "train-b"]


def test_the_generated_bash_script_completes_job_names(devcluster: DevCluster, jobs: str) -> None:
    """completions/ant.bash, sourced by a real bash, asking the real `ant`."""
    words = f"ant --kubeconfig {devcluster.kubeconfig} --context alice -n {jobs} show t"
    script = (
        f"source {REPO / 'completions' / 'ant.bash'}\n"
        f"COMP_WORDS=({words}); COMP_CWORD={len(words.split()) - 1}\n"
        "_ant_completion ant\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["train-a", "train-b"]


def test_commands_options_and_choices_complete_offline() -> None:
    assert suggestions("ant sh") == ["show"]
    assert "--all-users" in suggestions("ant list --all")
    assert suggestions("ant list -o ") == ["table", "wide", "json", "yaml", "name"]
    assert "install-priorities" in suggestions("ant admin ")


def kubeconfig_for(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: research}}]\n"
        "current-context: x\n"
    )
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("kind", ["unreachable", "silent"])
def test_a_broken_cluster_completes_nothing_quickly(tmp_path: Path, kind: str) -> None:
    with socket.socket() as listener:
        if kind == "silent":  # accepts connections (the kernel does), never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            port = listener.getsockname()[1]
        else:
            port = closed_port()
        kc = kubeconfig_for(tmp_path, f"https://127.0.0.1:{port}")
        started = time.monotonic()
        proc = complete(f"ant --kubeconfig {kc} show ")
        elapsed = time.monotonic() - started
    assert proc.returncode == 0
    assert proc.stdout.strip() == ""
    assert proc.stderr == ""
    assert elapsed < 5.0, f"completion took {elapsed:.1f}s"


def test_no_rights_or_no_kubeconfig_completes_nothing(
    devcluster: DevCluster, tmp_path: Path
) -> None:
    kc = devcluster.kubeconfig
    assert suggestions(f"ant --kubeconfig {kc} --context alice -n bob-private show ") == []
    assert suggestions(f"ant --kubeconfig {tmp_path / 'nope'} show ") == []
    assert suggestions(f"ant --kubeconfig {kc} --context nobody show ") == []


# ---- real shells, end to end: zsh and fish run the generated scripts; kubectl its plugin ----
def shell_path() -> str:
    """PATH with this venv's `ant` and `kubectl_complete-ant` first, as after installing."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def require(program: str) -> str:
    """The program's path; a missing shell fails the test (never a silent skip): `make
    test` installs zsh and fish (`make shells`)."""
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is not installed: run 'make shells' (apt-get install zsh fish)")
    return found


def zsh_completes(line: str, env: dict[str, str] | None = None) -> str:
    """The command line after a TAB in a real interactive zsh with completions/ant.zsh."""
    proc = subprocess.run(
        [require("zsh"), "-f", str(REPO / "tests/integration/complete_zsh.zsh"),
         str(REPO / "completions/ant.zsh"), line],
        env={**os.environ, "PATH": shell_path(), **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"<BUFFER>(.*)</BUFFER>", proc.stdout)
    assert found, proc.stdout
    return found.group(1)


def fish_completes(line: str, env: dict[str, str] | None = None) -> list[str]:
    """fish's candidates for `line` with completions/ant.fish (`complete -C`)."""
    script = f"source {REPO / 'completions/ant.fish'}; complete -C{shlex.quote(line)}"
    proc = subprocess.run(
        [require("fish"), "--no-config", "-c", script],
        env={**os.environ, "PATH": shell_path(), **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_zsh_completes_commands_choices_and_job_names(devcluster: DevCluster, jobs: str) -> None:
    assert zsh_completes("ant sh") == "ant show "
    assert zsh_completes("ant list -o ya") == "ant list -o yaml "
    assert zsh_completes("ant submit --priority opp") == "ant submit --priority opportunistic "
    line = f"ant --kubeconfig {devcluster.kubeconfig} --context bob -n {jobs} logs tr"
    assert zsh_completes(line) == f"{line[:-2]}train-bob "


def test_fish_completes_commands_choices_and_job_names(devcluster: DevCluster, jobs: str) -> None:
    assert fish_completes("ant sh") == [
        "show\tShow a job: its metadata, every replica and recent events."
    ]
    assert fish_completes("ant submit --priority ") == ["high", "normal", "opportunistic"]
    assert fish_completes("ant list --status Pending,Ru") == ["Pending,Running"]
    line = f"ant --kubeconfig {devcluster.kubeconfig} --context alice -n {jobs} show "
    assert fish_completes(line) == ["train-a\tfirst try", "train-b"]


def test_every_fixed_choice_completes_offline() -> None:
    assert suggestions("ant submit --priority ") == ["opportunistic", "normal", "high"]
    statuses = [s.value for s in JobStatus]
    assert suggestions("ant list --status Pending,") == [
        f"Pending,{s}" for s in statuses if s != "Pending"
    ]
    assert suggestions("ant submit --on-failure restart-") == ["restart-job", "restart-replica"]
    assert suggestions("ant wait x --for ") == ["running", "finished", "succeeded"]
    assert suggestions("ant rollout run x --order ") == ["descending", "ascending"]
    assert suggestions("ant rollout run x --on-failure ") == ["pause", "continue"]


def kubectl_complete(devcluster: DevCluster, *words: str) -> list[str]:
    """`kubectl ant WORDS<TAB>`: what the real kubectl answers (its __complete), through
    the plugin `kubectl-ant` and its completion helper `kubectl_complete-ant` on PATH."""
    proc = subprocess.run(
        [str(devcluster.kubectl), "__complete", "ant", *words],
        env={**os.environ, "PATH": shell_path(), "KUBECONFIG": str(devcluster.kubeconfig)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_kubectl_ant_completes_through_the_plugin(devcluster: DevCluster, jobs: str) -> None:
    assert kubectl_complete(devcluster, "li") == [
        "list\tList jobs: yours in the namespace, unless told otherwise.",
        ":4",
    ]
    assert kubectl_complete(devcluster, "submit", "--priority", "") == [
        "opportunistic", "normal", "high", ":4",
    ]  # fmt: skip
    # kubectl's flags go after `ant`: they are ant's, and pick the cluster and namespace.
    line = ["--context", "alice", "-n", jobs, "show", ""]
    assert kubectl_complete(devcluster, *line) == ["train-a\tfirst try", "train-b", ":4"]
