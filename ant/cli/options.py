"""Options shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer

from ant.cli.completion import complete_job


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
AllNamespaces = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Every namespace you may read.")
]
# Commands that change a job act on the caller's own unless forced (ant.jobs.ownership).
Force = Annotated[bool, typer.Option("--force", help="Act on another user's job too.")]


# Names become request paths: every job name is checked where it enters (exit 2).
def _check_job_names(ctx: typer.Context, value: str | list[str] | None) -> str | list[str] | None:
    """Callback for a job-name argument (one or many), each maybe ``CLUSTER/JOB``."""
    from ant.cli.clusters import checked_ref
    from ant.jobs import schema

    for name in [value] if isinstance(value, str) else value or []:
        schema.validate_job_name(checked_ref(ctx.obj, name)[1], "job")
    return value


def _check_job_target(ctx: typer.Context, value: str) -> str:
    """Callback for ``JOB`` or ``statefulset/NAME`` (update, rollout, rollback), maybe
    after ``CLUSTER/``."""
    from ant.cli.clusters import checked_ref
    from ant.jobs.rollout import parse_target

    parse_target(checked_ref(ctx.obj, value)[1])
    return value


# The job a command acts on: checked, and completed from the cluster.
def _job_argument(help: str, check: Callable[[Any], Any]) -> Any:
    return typer.Argument(
        help=help, show_default=False, autocompletion=complete_job, callback=check
    )


# Each may name its cluster: CLUSTER/JOB (ant.cli.clusters.parse_job_ref; App.on_job).
JobName = Annotated[str, _job_argument("Job name (or CLUSTER/JOB).", _check_job_names)]
JobOrStatefulSet = Annotated[
    str, _job_argument("Job name (or statefulset/NAME, CLUSTER/JOB).", _check_job_target)
]
JobNames = Annotated[
    list[str] | None, _job_argument("Job names (or CLUSTER/JOB).", _check_job_names)
]


def listen_address(listen: str, example: str) -> tuple[str, int]:
    """``--listen HOST:PORT`` -> (host, port); ``[::1]:8443`` -> ("::1", 8443)."""
    from ant.errors import UsageError

    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isascii() or not port_text.isdigit():
        raise UsageError(f"--listen {listen!r}: expected HOST:PORT, e.g. {example}")
    if not 0 < int(port_text) < 65536:
        raise UsageError(f"--listen {listen!r}: port {port_text} is not between 1 and 65535")
    return host.strip("[]"), int(port_text)
