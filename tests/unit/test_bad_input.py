"""Inputs that used to end in exit 1 "unexpected ..." or slip through (issue 14, items 10
and 11): each is a usage error, exit 2, one line naming what is wrong, nothing sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ant.errors import ExitCode
from tests.helpers import Result, run_ant
from tests.unit.scripted_server import ScriptedServer, scripted_server, write_kubeconfig


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


def refused(result: Result, *fragments: str) -> None:
    assert result.code == ExitCode.USAGE, result
    assert len(result.err_lines) == 1, result
    assert result.err_lines[0].startswith("ant: error: "), result
    for fragment in fragments:
        assert fragment in result.err, result
    assert "unexpected" not in result.err
    assert "Traceback" not in result.err


# ---- job files ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"name: x\nimage: busybox\n\xff\n", ["not UTF-8 text: byte 0xff at line 3"]),
        (
            b"name: x\nimage: busybox\npodTemplate: " + b"[" * 20_000 + b"]" * 20_000 + b"\n",
            ["not valid YAML at line 3", "nesting depth"],
        ),
        (
            b"name: x\nimage: busybox\npodTemplate:\n"
            + b"".join(b"  " * (i + 1) + b"k:\n" for i in range(200))
            + b"  " * 201
            + b"v\n",
            ["nested more than 64 levels deep"],
        ),
        (b"name: x\nimage: busybox\nname: y\n", ["name: given twice (lines 1 and 3)"]),
        (
            b"name: x\nimage: busybox\nenv:\n  LR: '1'\n  LR: '2'\n",
            ["LR: given twice (lines 4 and 5)"],
        ),
        (b"name: x\nimage: my image\n", ["image: 'my image' is not a valid image reference"]),
    ],
    ids=[
        "byte-0xff",
        "flow-20000-deep",
        "block-200-deep",
        "duplicate-top",
        "duplicate-nested",
        "image-with-space",
    ],
)
def test_a_bad_job_file_is_a_usage_error(
    content: bytes, fragments: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(content)
    refused(run_ant(["submit", str(path), "--dry-run"]), *fragments)


def test_a_pod_template_fragment_is_read_as_strictly(
    tmp_path: Path, server: ScriptedServer
) -> None:
    fragment = tmp_path / "fragment.yaml"
    fragment.write_text("spec:\n  hostNetwork: true\n  hostNetwork: false\n")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    result = run_ant(["update", "bert", "-f", str(fragment), "--kubeconfig", str(kubeconfig)])
    refused(result, "hostNetwork: given twice (lines 2 and 3)")
    assert server.seen == []


# ---- flags --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["delete", "x", "--wait", "--timeout", "99999999999999d"], "--timeout: "),
        (["list", "--since", "99999999999999d"], "longer than 3650d"),
        (["logs", "x", "--since", "99999999999999d"], "longer than 3650d"),
        (["logs", "x", "--tail", "99999999999999999999999"], "--tail: "),
        (["logs", "x", "--tail", "-5"], "--tail: -5 is not a number of lines"),
        (["cache", "serve", "--listen", ":99999"], "expected HOST:PORT"),
        (["cache", "serve", "--listen", "0.0.0.0:99999"], "port 99999 is not between 1 and"),
        (["controller", "run", "--listen", "127.0.0.1:99999"], "port 99999 is not between"),
        (["controller", "run", "--namespaces", "a,../b"], "--namespaces: '../b' is not a valid"),
        (["controller", "run", "--lease-namespace", "A"], "--lease-namespace: 'A' is not"),
        (["submit", "--dry-run", "--name", "x", "--image", "a b"], "not a valid image"),
        (["submit", "--dry-run", "--name", "x", "--image", "Busybox"], "not a valid image"),
        (
            ["submit", "--dry-run", "--name", "x", "--image", "i", "--replicas", "9" * 12],
            "is more than",
        ),
        (["update", "bert", "--env", "ANT_JOB=x"], "--env ANT_JOB: ANT_* variables are set"),
        (["update", "bert", "--unset-env", "ANT_REPLICA"], "--unset-env ANT_REPLICA"),
        (["update", "bert", "--image", "my image"], "--image: 'my image' is not a valid"),
    ],
    ids=" ".join,
)
def test_a_bad_flag_is_a_usage_error_and_sends_nothing(
    argv: list[str], fragment: str, tmp_path: Path, server: ScriptedServer
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    refused(run_ant([*argv, "--kubeconfig", str(kubeconfig)]), fragment)
    assert server.seen == []


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "ghcr.io/lab/train:1.4",
        "localhost:5000/a/b_c__d-e.f",
        "[::1]:5000/x:tag",
        "registry.example.com/team/img@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references_are_accepted(image: str) -> None:
    result = run_ant(["submit", "--dry-run", "--name", "x", "--image", image, "-o", "name"])
    assert result.code == 0, result
