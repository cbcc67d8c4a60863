from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ant.cli.context import App
from ant.cli.options import AllNamespaces, AllUsers, OutputFormat, User, output_option

if TYPE_CHECKING:
    from ant.jobs.queue import Queue

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
    from ant.cli import clusters as across
    from ant.cli import views
    from ant.errors import UsageError
    from ant.jobs import documents
    from ant.jobs.identity import user_label
    from ant.jobs.queue import get_queue

    app: App = ctx.obj
    if all_users and user:
        raise UsageError("--all-users and --user contradict each other")

    def fetch(app: App) -> Queue:
        """One cluster's queue, through its ant cache when one is configured. Only wide,
        json and yaml show the preemption count, so only they list the Preempted events."""
        namespace = None if all_namespaces else app.namespace
        owner = None if all_users else (user_label(user) if user else app.identity().label)
        found = get_queue(
            app.reader,
            namespace,
            user_label=owner,
            resources=resource or (),
            track_preemptions=output is not OutputFormat.table,
            cached_usage=lambda: cached_capacity(app.reader),
            named=app.named_namespaces,
        )
        app.skipped(found.skipped, "list jobs and pods")
        return found

    clusters = across.selected(app)
    if clusters:
        _across(app, clusters, fetch, output)
        return
    found = fetch(app)
    if output is OutputFormat.json:
        app.terminal.json(documents.queue(found))
    elif output is OutputFormat.yaml:
        app.terminal.yaml(documents.queue(found))
    else:
        views.render_queue(app.terminal, found, wide=output is OutputFormat.wide)


def _across(
    app: App, clusters: list[str], fetch: Callable[[App], Queue], output: OutputFormat
) -> None:
    """Each cluster's queue, asked at once: its own positions and capacity, one after the
    other (a table each under the cluster's name; json/yaml: a QueueList)."""
    from ant.cli import clusters as across
    from ant.cli import views
    from ant.jobs import documents

    answers = across.ask_each(app, clusters, fetch)
    queues = {a.cluster: a.value for a in answers if a.value is not None}
    unanswered = {a.cluster: a.error for a in answers if a.error is not None}
    if output in (OutputFormat.json, OutputFormat.yaml):
        document = documents.queue_list(queues, unanswered)
        (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)
    else:
        for answer in answers:
            app.terminal.line(f"CLUSTER {answer.cluster}")
            if answer.value is None:
                app.terminal.line("(no answer)")
            else:
                views.render_queue(app.terminal, answer.value, wide=output is OutputFormat.wide)
            app.terminal.line("")
    across.check_complete(answers)
