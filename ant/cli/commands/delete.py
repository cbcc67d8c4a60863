from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.context import App
from ant.cli.options import JobNames

HELP = """Delete jobs: their StatefulSet (and so their pods) and Service.

Name jobs, or select them: --mine --all (every job of yours in the namespace),
-l SELECTOR, or --sweep ID. Asks first on a terminal; scripts must pass --yes."""


def delete(
    ctx: typer.Context,
    jobs: JobNames = None,
    mine: Annotated[bool, typer.Option("--mine", help="With --all: your jobs.")] = False,
    all_jobs: Annotated[bool, typer.Option("--all", help="With --mine: all of them.")] = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Your jobs matching a label selector.")
    ] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="Every job of a sweep.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Until their pods are gone.")] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits.")] = "5m",
) -> None:
    from ant.cli.views import parse_duration
    from ant.errors import Aborted, UsageError
    from ant.jobs import lifecycle, schema
    from ant.jobs.identity import whoami

    app: App = ctx.obj
    wait_seconds = parse_duration(timeout, "--timeout")
    selecting = bool(selector or sweep or (mine and all_jobs))
    if bool(jobs) == selecting or (mine != all_jobs):
        raise UsageError(
            "name the jobs to delete, or select them with --mine --all, -l or --sweep (not both)"
        )
    names = list(jobs or [])
    if selecting:
        extra = ",".join(s for s in (selector, f"{schema.SWEEP}={sweep}" if sweep else None) if s)
        selector_ = schema.mine_selector(whoami(app.client).label, extra or None)
        names = sorted(lifecycle.job_names(app.client, app.namespace, selector_))
        if not names:
            app.terminal.info(f"no matching jobs in {app.namespace}")
            return
    shown = ", ".join(names) if len(names) <= 10 else f"{', '.join(names[:10])}, ..."
    question = f"Delete {len(names)} job(s) in {app.namespace} ({shown})?"
    if not app.terminal.confirm(question, assume_yes=yes):
        raise Aborted("nothing deleted")
    lifecycle.delete_jobs(
        app.client,
        app.namespace,
        names,
        on_deleted=lambda name: app.terminal.line(f"job/{name} deleted"),
    )
    if wait:
        app.deadline.extend(wait_seconds)
        with app.terminal.status(f"waiting for the pods of {len(names)} job(s) to go"):
            lifecycle.wait_gone(app.client, app.namespace, names, wait_seconds)
