from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import JobName

HELP = """Print a job's logs: replica 0 by default, one replica, or all of them.

With --all every line is prefixed with its replica, e.g. [train-3]."""

PREFIX_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "red")


def logs(
    ctx: typer.Context,
    job: JobName,
    replica: Annotated[int | None, typer.Option("--replica", "-r", help="Replica index.")] = None,
    all_replicas: Annotated[bool, typer.Option("--all", help="Every replica, prefixed.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only lines newer than, e.g. 10m.")
    ] = None,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Prefix timestamps.")] = False,
    previous: Annotated[
        bool,
        typer.Option("--previous", "-p", help="The last terminated container's log."),
    ] = False,
) -> None:
    from ant.errors import UsageError, ValidationError
    from ant.jobs import lifecycle
    from ant.jobs.durations import parse_duration

    app: App = ctx.obj
    app, job = locate(app, job)
    if replica is not None and all_replicas:
        raise UsageError("--replica and --all contradict each other")
    if tail is not None and not 0 <= tail < 2**63:
        raise ValidationError("--tail", f"{tail} is not a number of lines (0 or more)")
    if follow:
        app.deadline.per_call()  # runs until stopped: each call gets the whole deadline
    options = lifecycle.LogOptions(
        follow=follow,
        tail_lines=tail,
        since_seconds=parse_duration(since, "--since") if since else None,
        timestamps=timestamps,
        previous=previous,
    )
    if not all_replicas:
        for line in app.api.log_bytes(job, replica or 0, options):
            app.terminal.raw(line.decode(errors="replace"))  # the container's own bytes
        return

    found = app.api.with_pods(job)
    pods = [(i, f"{job}-{i}") for i in range(found.replicas)]
    for index, item in lifecycle.all_logs(app.client, app.namespace, pods, options):
        prefix = f"[{job}-{index}]"
        if isinstance(item, Exception):
            app.terminal.warn(f"{prefix} {item}")
            continue
        text = item.decode(errors="replace").rstrip("\n")
        app.terminal.log_line(prefix, PREFIX_STYLES[index % len(PREFIX_STYLES)], text)
