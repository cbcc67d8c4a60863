"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer


class OutputFormat(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


def output_option(*choices: OutputFormat) -> Any:
    names = "|".join(c.value for c in choices)
    return typer.Option(
        "--output",
        "-o",
        help=f"Output format: {names}.",
        case_sensitive=False,
        metavar=names,
        callback=lambda v: _check_choice(v, choices),
    )


def _check_choice(
    value: OutputFormat | None, choices: tuple[OutputFormat, ...]
) -> OutputFormat | None:
    if value is not None and value not in choices:
        allowed = ", ".join(c.value for c in choices)
        raise typer.BadParameter(f"{value.value!r} is not one of {allowed}")
    return value


# Whose jobs, and where: the same three options on every command that reads many jobs.
AllUsers = Annotated[bool, typer.Option("--all-users", help="Everyone's jobs.")]
User = Annotated[str | None, typer.Option("--user", help="This user's jobs.")]
AllNamespaces = Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")]
