from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import OutputFormat, output_option
from ant.cli.terminal import Column

HELP = "Cluster set-up for ant (needs cluster-admin rights)."

admin = typer.Typer(help=HELP, no_args_is_help=True)


@admin.command("install-priorities", short_help="Create ant's PriorityClasses (idempotent).")
def install_priorities(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
) -> None:
    """Create ant's PriorityClasses (idempotent); show what exists and what differs."""
    from ant.jobs import priorities

    app: App = ctx.obj
    states = priorities.install(app.client, dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    app.terminal.table(
        [
            Column("PRIORITY CLASS"),
            Column("VALUE", justify="right"),
            Column("PREEMPTION"),
            Column("STATE"),
        ],
        [
            [
                s.level.name,
                str(s.level.value),
                s.level.preemption_policy,
                {"missing": verb, "installed": "installed", "differs": f"differs: {s.detail}"}[
                    s.state
                ],
            ]
            for s in states
        ],
    )
    if any(s.state == "differs" for s in states):
        app.terminal.warn(
            "a PriorityClass value cannot change: delete the differing class, then run this again"
        )


@admin.command("install-queues", short_help="Create the Kueue objects ant's --queue needs.")
def install_queues(
    ctx: typer.Context,
    cluster_queue: Annotated[
        str, typer.Option("--cluster-queue", help="Name of the ClusterQueue.")
    ] = "ant",
    queue: Annotated[str, typer.Option("--queue", help="Name of the LocalQueues.")] = "ant",
    queue_namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--queue-namespace", help="A namespace to get a LocalQueue (repeatable; default: -n)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be created; create nothing.")
    ] = False,
    output: Annotated[
        OutputFormat | None, output_option(OutputFormat.json, OutputFormat.yaml)
    ] = None,
) -> None:
    """Create (idempotently) ResourceFlavors from the nodes' labels, a ClusterQueue with
    the pool's quota, LocalQueues and WorkloadPriorityClasses matching ant's priorities
    (docs/queueing.md#ant-admin-install-queues)."""
    from ant.jobs import kueue_setup
    from ant.jobs.schema import validate_namespace
    from ant.kube import resources as r

    app: App = ctx.obj
    namespaces = queue_namespace or [app.namespace]
    for ns in namespaces:
        validate_namespace(ns, "--queue-namespace")
    planned = kueue_setup.plan(
        app.client.list(r.NODES).items,
        cluster_queue=cluster_queue,
        local_queue=queue,
        namespaces=namespaces,
    )
    if dry_run and output is not None:
        document = {"apiVersion": "v1", "kind": "List", "items": [p.object for p in planned]}
        (app.terminal.json if output is OutputFormat.json else app.terminal.yaml)(document)
        return
    states = kueue_setup.install(app.client, planned, dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    app.terminal.table(
        [Column("KIND"), Column("NAME"), Column("NAMESPACE"), Column("STATE")],
        [
            [
                s.planned.resource.kind,
                s.planned.name,
                s.planned.namespace or "-",
                {"missing": verb, "installed": "installed", "differs": f"differs: {s.detail}"}[
                    s.state
                ],
            ]
            for s in states
        ],
    )
