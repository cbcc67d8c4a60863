from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.context import App
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
