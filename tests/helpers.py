"""Small helpers shared by the tests."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float = 60.0,
    *,
    state: Callable[[], Any] | None = None,
    every: float = 0.2,
) -> Any:
    """Poll ``probe`` until it returns something truthy, and return that.

    On timeout the test fails naming ``what`` and, when given, the last ``state()``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {state()}" if state else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(every)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Result:
    """What one in-process ``ant`` run produced."""

    argv: list[str]
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"ant {' '.join(self.argv)} -> {self.code}\nstdout: {self.out}\nstderr: {self.err}"


def run_ant(
    argv: Sequence[str],
    *,
    vars: Mapping[str, str] | None = None,
    stdin: io.StringIO | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run the real CLI in-process with an injected Environment (no patching of sys)."""
    from ant.cli.environment import Environment
    from ant.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=stdin or io.StringIO(""),
        stdout=out,
        stderr=err,
        vars={"NO_COLOR": "1", **(vars or {})},
        cwd=str(cwd or Path.cwd()),
    )
    code = run(list(argv), env=env)
    return Result(list(argv), int(code), out.getvalue(), err.getvalue())


def what_ant_writes(sts: Any) -> tuple[Any, ...]:
    """A StatefulSet's spec (its generation), labels and annotations (from the official
    client): all a command of ant's may change. Not its resourceVersion: the StatefulSet
    controller may still be updating its status."""
    meta = sts.metadata
    return meta.generation, dict(meta.labels or {}), dict(meta.annotations or {})
