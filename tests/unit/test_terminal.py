"""Terminal: text from the cluster reaches a screen with its control characters visible."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from ant.cli import views
from ant.cli.environment import Environment
from ant.cli.terminal import Column, Terminal, visible
from ant.jobs.model import Job, JobStatus, Replica

HOSTILE = "\x1b]0;pwned\x07 \x1b[2J"
SHOWN = r"\x1b]0;pwned\x07 \x1b[2J"
# Anything a terminal would act on: C0 (newline and tab aside), DEL, C1.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SGR = re.compile("\x1b\\[[0-9;]*m")  # rich's colours on a TTY: the only escapes ant writes


def raw_controls(text: str) -> list[str]:
    return RAW_CONTROL.findall(SGR.sub("", text))


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal(*, tty: bool) -> tuple[Terminal, io.StringIO, io.StringIO]:
    out, err = (Tty(), Tty()) if tty else (io.StringIO(), io.StringIO())
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, vars={"TERM": "xterm"})
    return Terminal(env), out, err


@pytest.mark.parametrize(
    ("text", "lines", "shown"),
    [
        (HOSTILE, False, SHOWN),
        ("a\nb\tc\rd", False, r"a\nb\tc\rd"),
        ("a\nb\tc\rd", True, "a\nb\tc\\rd"),
        ("\x00\x7f\x9b[31m", False, r"\x00\x7f\x9b[31m"),
        ("naïve — ünïcode ok", False, "naïve — ünïcode ok"),
    ],
)
def test_visible(text: str, lines: bool, shown: str) -> None:
    assert visible(text, lines=lines) == shown
    assert visible(shown, lines=lines) == shown  # idempotent: nothing left to escape


@pytest.mark.parametrize("tty", [False, True])
def test_every_human_output_shows_control_characters(tty: bool) -> None:
    term, out, err = terminal(tty=tty)
    term.table([Column("NAME"), Column("DESCRIPTION")], [["bert", f"multi\nline {HOSTILE}"]])
    term.line(f"description: {HOSTILE}")
    term.styled(HOSTILE, "red")
    term.write(f"- image: a\n+ image: {HOSTILE}\n")
    term.error(HOSTILE)
    term.warn(HOSTILE)
    term.info(HOSTILE)
    for stream in (out, err):
        assert not raw_controls(stream.getvalue()), stream.getvalue()
    assert r"multi\nline" in out.getvalue()  # a cell stays one line
    assert out.getvalue().count("pwned") == 4
    assert err.getvalue().count("pwned") == 3
    if not tty:  # piped: exactly the text, written out
        assert out.getvalue().splitlines()[1:] == [
            f"bert   multi\\nline {SHOWN}",
            f"description: {SHOWN}",
            SHOWN,
            "- image: a",
            f"+ image: {SHOWN}",
        ]
        assert err.getvalue().splitlines() == [
            f"ant: error: {SHOWN}",
            f"ant: warning: {SHOWN}",
            SHOWN,
        ]


@pytest.mark.parametrize("tty", [False, True])
def test_json_and_yaml_stay_exact(tty: bool) -> None:
    doc = {"description": HOSTILE, "meta": {"note": "tab\there\r\n"}}
    term, out, _ = terminal(tty=tty)
    term.json(doc)
    assert json.loads(out.getvalue()) == doc
    assert "\x1b" not in out.getvalue()  # JSON escapes control characters itself
    term, out, _ = terminal(tty=tty)
    term.yaml(doc)
    assert yaml.safe_load(out.getvalue()) == doc
    assert "\x1b" not in out.getvalue()  # and so does YAML ("\e]0;...")


@pytest.mark.parametrize("tty", [False, True])
def test_a_log_body_is_the_container_s_own_bytes_its_prefix_is_ant_s(tty: bool) -> None:
    term, out, _ = terminal(tty=tty)
    term.log_line(f"[bert-0{HOSTILE}]", "cyan", "\x1b[32mstep 10\x1b[0m loss=1.5")
    assert out.getvalue().endswith(" \x1b[32mstep 10\x1b[0m loss=1.5\n")
    assert SHOWN in out.getvalue()


def hostile_job() -> Job:
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    return Job(
        name="bert",
        namespace="research",
        user="mallory",
        user_full=f"mallory{HOSTILE}",
        status=JobStatus.PENDING,
        replicas=1,
        ready=0,
        pending=1,
        updated=0,
        priority="normal",
        created_at=at,
        labels={"team": f"x{HOSTILE}"},
        meta={"note": f"line one\nStatus:      Running{HOSTILE}"},
        description=f"desc {HOSTILE}",
        update_revision="bert-1",
        current_revision="bert-1",
        pods=(
            Replica(
                index=0,
                pod="bert-0",
                uid="u",
                phase="Pending",
                ready=False,
                scheduled=False,
                node="",
                restarts=0,
                revision="bert-1",
                created_at=at,
                reason="Unschedulable",
                message=f"0/8 nodes {HOSTILE}",
            ),
        ),
    )


@pytest.mark.parametrize("tty", [False, True])
def test_list_and_show_views_escape_what_the_cluster_wrote(tty: bool) -> None:
    from ant.jobs.lifecycle import Event

    job = hostile_job()
    event = Event(
        time="t", type="Warning", reason=f"R{HOSTILE}", object="pod/bert-0", message=HOSTILE
    )
    term, out, _ = terminal(tty=tty)
    views.render_job_table(term, [job], wide=True, namespaces=True)
    views.render_job_details(term, job, [event])
    text = out.getvalue()
    assert not raw_controls(text), text
    assert SHOWN in text
    # A value cannot forge a line of its own: the meta value stays on its field's line.
    assert not any(line.startswith("Status:      Running") for line in text.splitlines())
    assert "Meta note:" in text
    assert r"line one\nStatus:" in text
