"""All of ant's output: the one place that knows about colours, tables and TTYs.

People at a terminal get rich tables, colours and spinners; pipes get plain,
stable text (kubectl-style columns) that scripts can parse. ``NO_COLOR`` is
honoured. rich is imported only when something is drawn on a TTY.

Text from the cluster (names, labels, descriptions, reasons, events, error messages)
can carry escape sequences that retitle a window or clear a screen. Every human-readable
line goes through ``visible``, on a TTY and when piped; only ``raw`` writes exactly what
it is given: JSON and YAML (which escape control characters themselves), a log line's
body (a container's own output, as ``kubectl logs`` prints it) and ant's own escapes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from ant.cli.environment import Environment
from ant.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLES = {
    "Running": "green",
    "Pending": "yellow",
    "Partial": "yellow",
    "Queued": "cyan",
    "Updating": "cyan",
    "Degraded": "red",
    "Terminating": "dim",
    "Paused": "red",
    "Restarting": "yellow",
    "Succeeded": "blue",
    "Failed": "red",
}


# C0 controls, DEL and C1 controls (U+009B is a one-character CSI on some terminals).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character written out: ESC as ``\\x1b``, CR as ``\\r``.

    ``lines``: newlines and tabs stay (text of several lines); without, the result is
    one line (a table cell, a field's value).
    """
    if text.isprintable():  # no control character at all (most text): nothing to write out
        return text
    return (_CONTROL_BUT_LINES if lines else _CONTROL).sub(_written_out, text)


def _written_out(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"
    styles: dict[str, str] | None = None  # cell value -> rich style


class Progress:
    """Progress of a long operation: a rich bar on a TTY, one plain line per update elsewhere."""

    def __init__(self, terminal: Terminal, total: int, description: str) -> None:
        self._terminal = terminal
        self.total = total
        self.completed = 0
        self.description = visible(description)
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._terminal.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._terminal.err_console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def update(self, completed: int, description: str | None = None) -> None:
        description = visible(description) if description else description
        changed = completed != self.completed or (description and description != self.description)
        self.completed = completed
        if description:
            self.description = description
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, description=self.description)
        elif changed:
            self._terminal.info(f"{self.description}: {completed}/{self.total}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


class Terminal:
    def __init__(
        self,
        env: Environment,
        *,
        verbosity: int = 0,
        on_answered: Callable[[float], None] | None = None,
    ) -> None:
        self.env = env
        self.verbosity = verbosity
        # Told how long a person took to answer a prompt (that time is not the cluster's).
        self.on_answered = on_answered
        self._out: Console | None = None
        self._err: Console | None = None
        self._warned: set[str] = set()

    @property
    def interactive(self) -> bool:
        """A person is watching stderr: spinners and progress bars are worth drawing."""
        return self.env.stderr_isatty and self.env.vars.get("TERM") != "dumb"

    @property
    def color(self) -> bool:
        return self.env.stdout_isatty and not self.env.no_color

    @property
    def out_console(self) -> Console:
        if self._out is None:
            self._out = self._console(self.env.stdout, self.env.stdout_isatty)
        return self._out

    @property
    def err_console(self) -> Console:
        if self._err is None:
            self._err = self._console(self.env.stderr, self.env.stderr_isatty)
        return self._err

    def _console(self, file: Any, tty: bool) -> Console:
        from rich.console import Console

        return Console(
            file=file,
            force_terminal=tty,
            no_color=self.env.no_color,
            highlight=False,
            soft_wrap=not tty,
        )

    # ---- plain streams ------------------------------------------------------
    def line(self, text: str = "") -> None:
        """One line of result on stdout (no markup; control characters made visible)."""
        self.raw(visible(text, lines=True) + "\n")

    def write(self, text: str) -> None:
        """Text of several lines on stdout (a diff), control characters made visible."""
        self.raw(visible(text, lines=True))

    def raw(self, text: str) -> None:
        """Exactly ``text`` on stdout: only for JSON, YAML, log bodies and ant's own escapes."""
        self.env.stdout.write(text)
        self.env.stdout.flush()

    def raw_stderr(self, text: str) -> None:
        """Exactly ``text`` on stderr: a command's own error output (``ant exec``)."""
        self.env.stderr.write(text)
        self.env.stderr.flush()

    def styled(self, text: str, style: str) -> None:
        """A line on stdout, coloured on a TTY."""
        if self.color:
            from rich.text import Text

            self.out_console.print(Text(visible(text, lines=True), style=style))
        else:
            self.line(text)

    def log_line(self, prefix: str, style: str, text: str) -> None:
        """A line of a container's log after a prefix of ant's (coloured on a TTY).

        The body is the container's own output and goes out exactly as it came, as
        ``kubectl logs`` prints it; the prefix is made visible like all of ant's text.
        """
        if self.color:
            from rich.text import Text

            self.out_console.print(Text(visible(prefix), style=style), end=" ")
            self.raw(text + "\n")
        else:
            self.raw(f"{visible(prefix)} {text}\n")

    def error(self, message: str) -> None:
        self._stderr_line(f"ant: error: {message}", "bold red")

    def warn(self, message: str) -> None:
        """A warning on stderr, once per distinct message."""
        if message not in self._warned:
            self._warned.add(message)
            self._stderr_line(f"ant: warning: {message}", "yellow")

    def info(self, message: str) -> None:
        self._stderr_line(message, "dim")

    def debug(self, message: str) -> None:
        if self.verbosity:
            self._stderr_line(message, "dim")

    def _stderr_line(self, text: str, style: str) -> None:
        text = visible(text, lines=True)
        if self.env.stderr_isatty and not self.env.no_color:
            from rich.text import Text

            self.err_console.print(Text(text, style=style))
        else:
            self.env.stderr.write(text + "\n")
            self.env.stderr.flush()

    # ---- structured output ---------------------------------------------------
    def json(self, obj: Any) -> None:
        self.raw(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")

    def yaml(self, obj: Any) -> None:
        import yaml

        class PlainDumper(yaml.SafeDumper):
            # A dict shared by several objects (one labels map on Service, StatefulSet
            # and pod template) must print in full each time, not as &id001/*id001.
            def ignore_aliases(self, data: Any) -> bool:
                return True

        # YAML writes control characters as escapes ("\\e]0;..."): exact and safe as is.
        self.raw(yaml.dump(obj, Dumper=PlainDumper, sort_keys=False, default_flow_style=False))

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        """kubectl-style columns; coloured cells on a TTY, plain and stable when piped.

        A cell is one line: its control characters, newlines included, are made visible."""
        if not "".join(chain.from_iterable(rows)).isprintable():  # all at once: nearly always
            rows = [[visible(v) for v in row] for row in rows]
        if not self.color:
            self.raw(plain_table([c.header for c in columns], rows))
            return
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
        for c in columns:
            table.add_column(c.header, justify=c.justify, no_wrap=True)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(
                *(
                    f"[{c.styles[v]}]{_escape(v)}[/]" if c.styles and v in c.styles else _escape(v)
                    for c, v in zip(columns, row, strict=True)
                )
            )
        self.out_console.print(table)

    # ---- interaction ----------------------------------------------------------
    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner while waiting, on a TTY only."""
        if not self.interactive:
            yield
            return
        with self.err_console.status(visible(message)):
            yield

    def progress(self, total: int, description: str) -> Progress:
        return Progress(self, total, description)

    def confirm(self, question: str, *, assume_yes: bool) -> bool:
        """Ask on a TTY; in scripts refuse to guess unless ``--yes`` was given."""
        if assume_yes:
            return True
        if not self.env.stdin_isatty:
            raise UsageError(
                f"{question.rstrip('?')}: needs confirmation",
                hint="pass --yes to confirm in scripts",
            )
        self.env.stderr.write(f"{visible(question)} [y/N] ")
        self.env.stderr.flush()
        asked = time.monotonic()
        answer = self.env.stdin.readline().strip().lower()
        if self.on_answered:
            self.on_answered(time.monotonic() - asked)
        return answer in ("y", "yes")


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns three spaces apart, each as wide as its widest cell; no trailing spaces."""
    widths = [max(map(len, column)) for column in zip(headers, *rows, strict=True)]
    line = "   ".join([f"%-{w}s" for w in widths[:-1]] + ["%s"])  # one format for every row
    return "".join([(line % tuple(cells)).rstrip() + "\n" for cells in [headers, *rows]])


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
