"""The process environment a command runs in, injected so tests never patch ``sys``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO


@dataclass
class Environment:
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    vars: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # The command line as typed (after `ant`), recorded on submitted jobs.
    argv: tuple[str, ...] = ()
    # What followed `--` on the command line: the job's own command (submit, update).
    trailing_command: tuple[str, ...] = ()
    cwd: str = field(default_factory=os.getcwd)

    @property
    def stdin_isatty(self) -> bool:
        return _isatty(self.stdin)

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_isatty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def debug(self) -> bool:
        """``ANT_DEBUG=1``: full tracebacks for unexpected errors."""
        return self.vars.get("ANT_DEBUG", "") not in ("", "0")

    @property
    def no_color(self) -> bool:
        return "NO_COLOR" in self.vars


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
