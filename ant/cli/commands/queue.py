from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import AllNamespaces, AllUsers, OutputFormat, User, output_option

HELP = """Show the jobs waiting for capacity, in the order the scheduler considers them.

Priority first (high, normal, opportunistic), then submission time. PENDING is
unscheduled/total pods; a Partial job has some pods running, holding resources it
cannot use until the rest are scheduled. REASON is the scheduler's. The last lines
give the accelerator capacity: allocatable on Ready nodes, and what the pods in scope
request, running and pending. Positions count every waiting job in the namespace(s),
yours or not; the list shows yours unless --all-users or --user."""


def queue(
    ctx: typer.Context,
    all_users: AllUsers = False,
    user: User = None,
    all_namespaces: AllNamespaces = False,
    resource: Annotated[
        list[str] | None,
        typer.Option(
            "--resource", help="Capacity of this resource (repeatable; default: accelerators)."
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        output_option(OutputFormat.table, OutputFormat.wide, OutputFormat.json, OutputFormat.yaml),
    ] = OutputFormat.table,
) -> None:
    from ant.cache.client import cached_capacity
    from ant.cli import views
    from ant.errors import UsageError
    from ant.jobs import documents
    from ant.jobs.identity import user_label
    from ant.jobs.queue import get_queue

    app: App = ctx.obj
    if all_users and user:
        raise UsageError("--all-users and --user contradict each other")
    namespace = None if all_namespaces else app.namespace
    owner = None if all_users else (user_label(user) if user else app.identity().label)
    # Through the ant cache when one is configured. Only wide, json and yaml show the
    # preemption count, so only they list the Preempted events.
    found = get_queue(
        app.reader,
        namespace,
        user_label=owner,
        resources=resource or (),
        track_preemptions=output is not OutputFormat.table,
        cached_usage=lambda: cached_capacity(app.reader),
    )
    if output is OutputFormat.json:
        app.terminal.json(documents.queue(found))
    elif output is OutputFormat.yaml:
        app.terminal.yaml(documents.queue(found))
    else:
        views.render_queue(app.terminal, found, wide=output is OutputFormat.wide)
