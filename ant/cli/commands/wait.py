"""``ant wait``: block until jobs are running, finished or succeeded (docs/cli.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate_all
from ant.cli.completion import complete_wait_condition
from ant.cli.context import App
from ant.cli.options import JobNames

HELP = """Wait until the jobs are running, finished or succeeded (a watch, not polling).

Exit 0 when the condition holds for all of them (--any: for one); 8 when a job failed or
can never get there (deleted, or failed before running); 124 when --timeout runs out."""


def wait(
    ctx: typer.Context,
    jobs: JobNames = None,
    for_: Annotated[
        str,
        typer.Option(
            "--for",
            help="running | finished | succeeded.",
            autocompletion=complete_wait_condition,
        ),
    ] = "finished",
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Give up after this long, e.g. 30m.")
    ] = None,
    any_: Annotated[bool, typer.Option("--any", help="Return when one job gets there.")] = False,
) -> None:
    from ant.errors import UsageError, ValidationError
    from ant.jobs.durations import parse_duration
    from ant.jobs.waiting import Condition, Verdict

    app: App = ctx.obj
    if not jobs:
        raise UsageError("name the jobs to wait for", hint="e.g. ant wait train --for succeeded")
    app, jobs = locate_all(app, jobs)  # each may be CLUSTER/JOB
    try:
        condition = Condition(for_)
    except ValueError as e:
        known = ", ".join(c.value for c in Condition)
        raise ValidationError("--for", f"unknown condition {for_!r}", hint=f"use {known}") from e
    seconds = parse_duration(timeout, "--timeout") if timeout is not None else None
    if seconds is None:
        app.deadline.per_call()  # waits as long as it takes: each call gets the deadline
    else:
        app.deadline.extend(seconds)
    if condition is not Condition.RUNNING:
        app.warn_without_controller()
    verdicts = app.api.wait_until(jobs, condition.value, timeout=seconds, any_=any_)
    for name, verdict in verdicts.items():
        if verdict == Verdict.HOLDS:
            app.terminal.line(f"job/{name} {condition.value}")
