from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import Force, JobOrStatefulSet

HELP = """Restore the pod template of the job's previous revision.

Like 'ant update', nothing restarts: 'ant rollout JOB' then replaces the pods (those
still on the restored revision are left alone). --to-revision picks another revision
by number ('ant rollout status JOB' lists them). Another user's job only with --force."""


def rollback(
    ctx: typer.Context,
    job: JobOrStatefulSet,
    to_revision: Annotated[
        int | None,
        typer.Option("--to-revision", help="Revision number to restore.", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff of the pod template; change nothing.")
    ] = False,
    force: Force = False,
) -> None:
    from ant.jobs import rollout as ro

    app: App = ctx.obj
    app, job = locate(app, job)
    by = "" if dry_run else app.template_writer(job, force=force)
    with app.terminal.status(f"rolling back {job}"):
        result = ro.rollback(
            app.client, app.namespace, job, by=by, to_revision=to_revision, dry_run=dry_run
        )
    restored = result.restored
    assert restored is not None
    what = f"revision {restored.number} ({restored.name})"
    if not result.written:
        app.terminal.line(f"job/{result.name} is already on {what}")
        return
    if dry_run:
        app.terminal.info(f"would restore {what}")
        app.terminal.write(result.diff)
        return
    app.terminal.line(f"job/{result.name} rolled back to {what} (was {result.previous_revision})")
    app.terminal.info(f"nothing restarted: 'ant rollout {job}' replaces the pods")
