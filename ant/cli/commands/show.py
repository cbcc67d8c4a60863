from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import JobName, OutputFormat, output_option

HELP = """Show a job: its metadata, what its pods run, every replica, and recent events.

What the pods run (image, command, resources, env, mounts, volumes) is read from the
StatefulSet's pod template and the pods themselves, never from submit-time annotations;
a value from a Secret is shown as its reference, never read."""


def show(
    ctx: typer.Context,
    job: JobName,
    output: Annotated[
        OutputFormat,
        output_option(OutputFormat.table, OutputFormat.json, OutputFormat.yaml),
    ] = OutputFormat.table,
) -> None:
    from dataclasses import replace

    from ant.cli import views
    from ant.jobs.admission import admission
    from ant.jobs.documents import job_details

    root: App = ctx.obj
    app, job = locate(root, job)
    found, events = app.api.events(job)
    if app is not root:  # found among several clusters, or named CLUSTER/JOB
        found = replace(found, cluster=app.options.context or "")
    if not found.status.finished:
        app.warn_without_controller()
    admitted = admission(app.reader, found) if found.gang else None
    if output is OutputFormat.table:
        views.render_job_details(app.terminal, found, events, admitted)
    elif output is OutputFormat.json:
        app.terminal.json(job_details(found, events, admitted))
    else:
        app.terminal.yaml(job_details(found, events, admitted))
