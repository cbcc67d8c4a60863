"""Property-based fuzzing of the CLI's arguments and of job files (issue 14).

Every run goes through the real CLI in process, against a scripted server that answers
every request (a read: 404; a write: 403), so nothing it is asked can hang. Whatever the
input: never a traceback, never exit 1 "unexpected", and an input ant refuses (exit 2)
sends no request that could change anything.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ant.errors import ExitCode
from tests.faults.conftest import UNEXPECTED
from tests.helpers import Result, run_ant
from tests.unit.scripted_server import ScriptedServer, respond, scripted_server, write_kubeconfig

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# POSTs that ask the server a question and create nothing.
REVIEWS = ("selfsubjectreviews", "selfsubjectaccessreviews", "subjectaccessreviews")


def status(code: int, reason: str) -> bytes:
    return json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}
    ).encode()


def answer(h: http.server.BaseHTTPRequestHandler) -> None:
    """Reads find nothing; writes are forbidden: every command ends quickly."""
    if h.command == "GET":
        respond(404, status(404, "NotFound"))(h)
    else:
        respond(403, status(403, "Forbidden"))(h)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


@pytest.fixture(scope="module")
def kubeconfig(server: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kubeconfig(tmp_path_factory.mktemp("fuzz") / "kubeconfig", server.url)


def writes(server: ScriptedServer) -> list[str]:
    return [
        f"{s.method} {s.path}"
        for s in server.seen
        if s.method in WRITES and not any(r in s.path for r in REVIEWS)
    ]


def run_against(server: ScriptedServer, argv: list[str], kubeconfig: Path) -> Result:
    server.seen.clear()
    server.replies[:] = [answer] * 200
    return run_ant(["--kubeconfig", str(kubeconfig), "--deadline", "10s", *argv])


def holds(result: Result, server: ScriptedServer) -> None:
    """The properties every input must keep."""
    assert "Traceback" not in result.err, result
    assert UNEXPECTED not in result.err, result
    if result.code == ExitCode.USAGE:
        assert writes(server) == [], f"refused, yet sent writes: {writes(server)}\n{result}"
        assert result.err.strip(), result


# ---- the CLI's arguments -------------------------------------------------------------------
# Values that have broken parsers before: empty, huge, negative, paths, control characters,
# bytes that are not text, unit suffixes that overflow.
NASTY = st.sampled_from(
    [
        "",
        "-1",
        "0",
        "99999999999999999999",
        "1e309",
        "nan",
        "../../etc",
        "a/b",
        "x" * 300,
        "\x1b]0;pwned\x07",
        "\x00",
        "\udcff",
        "99999999999999d",
        "1h",
        "0-9999999",
        "3-1",
        "K=V",
        "=",
        "ANT_JOB=x",
        "busybox:1.36",
        "my image",
        ":99999",
        "Pending,Nope",
        "a,b,,c",
    ]
)
VALUE = st.one_of(NASTY, st.text(max_size=20), st.integers(-(2**70), 2**70).map(str))
# Commands that change nothing the test cannot see and end on their own (no -f/--watch
# follow, no servers: cache serve and controller run are left out on purpose).
COMMANDS = st.sampled_from(
    [
        ["submit"],
        ["delete"],
        ["rollout"],
        ["rollout", "status"],
        ["rollback"],
        ["update"],
        ["restart"],
        ["list"],
        ["show"],
        ["queue"],
        ["whoami"],
    ]
)
FLAGS = st.sampled_from(
    [
        "--name",
        "--generate-name",
        "--image",
        "--replicas",
        "--priority",
        "--tpus",
        "--gpus",
        "--resource",
        "--env",
        "--label",
        "--meta",
        "--description",
        "--sweep",
        "--count",
        "--max-restarts",
        "--on-failure",
        "--after",
        "--ttl",
        "--output",
        "--selector",
        "--status",
        "--since",
        "--timeout",
        "--max-unavailable",
        "--batch-size",
        "--unset-env",
        "--replica",
        "--user",
        "--namespace",
        "--deadline",
        "--tail",
        "--yes",
        "--all",
        "--mine",
        "--force",
        "--all-users",
        "--dry-run",
        "--",
    ]
)
ARGV = st.tuples(COMMANDS, st.lists(st.one_of(FLAGS, VALUE), max_size=8)).map(
    lambda t: [*t[0], *t[1]]
)


@FUZZ
@given(argv=ARGV)
# Names too long to stat (ENAMETOOLONG): Path.exists and Path.is_file raise on them.
@example(argv=["submit", "x" * 300])
@example(argv=["--kubeconfig", "x" * 300, "list"])
def test_any_arguments_end_in_a_clear_line_and_a_refusal_sends_no_write(
    argv: list[str], server: ScriptedServer, kubeconfig: Path
) -> None:
    holds(run_against(server, argv, kubeconfig), server)


# ---- job files -----------------------------------------------------------------------------
KEYS = st.sampled_from(
    [
        "name",
        "generateName",
        "image",
        "replicas",
        "priority",
        "tpus",
        "gpus",
        "resources",
        "env",
        "command",
        "args",
        "labels",
        "meta",
        "description",
        "sweep",
        "count",
        "maxRestarts",
        "onFailure",
        "after",
        "ttl",
        "podTemplate",
        "mounts",
        "secretEnv",
        "unknown",
    ]
)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), VALUE, NASTY
)
NODE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(KEYS, VALUE), inner, max_size=4)
    ),
    max_leaves=12,
)
DOCUMENT = st.dictionaries(KEYS, NODE, max_size=8).map(
    lambda d: yaml.safe_dump(d, allow_unicode=True).encode("utf-8", "surrogatepass")
)
# Broken text as well as broken structure: cut documents, duplicated keys, stray bytes.
RAW = st.one_of(
    st.binary(max_size=200),
    st.tuples(DOCUMENT, st.integers(0, 400)).map(lambda t: t[0][: t[1]]),
    DOCUMENT.map(lambda d: d + d),
    st.tuples(DOCUMENT, st.binary(min_size=1, max_size=4)).map(lambda t: t[0] + t[1]),
)


@FUZZ
@given(content=st.one_of(DOCUMENT, RAW))
def test_any_job_file_ends_in_a_clear_line_and_a_refusal_sends_no_write(
    content: bytes, server: ScriptedServer, kubeconfig: Path, tmp_path: Path
) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(content)
    holds(run_against(server, ["submit", str(path)], kubeconfig), server)
