"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

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
