from __future__ import annotations

from typing import Annotated

import typer

from ant.cli.clusters import locate_all
from ant.cli.context import App
from ant.cli.options import AllUsers, Force, JobNames

HELP = """Delete jobs: their StatefulSet (and so their pods) and Service.

Name jobs, or select them: --mine --all (every job of yours in the namespace),
-l SELECTOR, or --sweep ID (your jobs; with --all-users everyone's). Another user's job
named only with --force. Asks first on a terminal; scripts must pass --yes."""


def delete(
    ctx: typer.Context,
    jobs: JobNames = None,
    mine: Annotated[bool, typer.Option("--mine", help="With --all: your jobs.")] = False,
    all_jobs: Annotated[bool, typer.Option("--all", help="With --mine: all of them.")] = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Your jobs matching a label selector.")
    ] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="Every job of a sweep.")] = None,
    all_users: AllUsers = False,
    force: Force = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Until their pods are gone.")] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits.")] = "5m",
) -> None:
    from ant.errors import Aborted, UsageError
    from ant.jobs import lifecycle, ownership, schema
    from ant.jobs.identity import whoami
    from ant.jobs.spec import parse_duration
    from ant.kube import resources as r

    app: App = ctx.obj
    app, jobs = locate_all(app, jobs or [])  # each may be CLUSTER/JOB
    wait_seconds = parse_duration(timeout, "--timeout")
    selecting = bool(selector or sweep or (mine and all_jobs))
    if bool(jobs) == selecting or (mine != all_jobs):
        raise UsageError(
            "name the jobs to delete, or select them with --mine --all, -l or --sweep (not both)"
        )
    if all_users and (mine or not (selector or sweep)):
        raise UsageError("--all-users goes with -l or --sweep (not with --mine or names)")
    # Selecting your jobs asks who you are afresh (docs/metadata.md); naming them may
    # use the remembered answer.
    me = whoami(app.client) if selecting else app.identity()
    names = list(jobs or [])
    if selecting:
        extra = ",".join(s for s in (selector, f"{schema.SWEEP}={sweep}" if sweep else None) if s)
        label_selector = schema.mine_selector(None if all_users else me.label, extra or None)
        names = sorted(lifecycle.job_names(app.client, app.namespace, label_selector))
        # Yours need no owner named; everyone's do (one GET each, for the prompt).
        owners = ownership.owners(app.client, app.namespace, names) if all_users else {}
        if not names:
            app.terminal.info(f"no matching jobs in {app.namespace}")
            return
    else:
        owners = ownership.owners(app.client, app.namespace, names)
    others = {
        name: other.username
        for name in names
        if (
            other := ownership.check(
                name,
                app.namespace,
                owners.get(name),
                me,
                force=force or selecting,
                flag="--force",
                probe=ownership.dry_run_delete(app.client, r.STATEFULSETS, app.namespace, name),
            )
        )
    }
    named = [f"{n} ({others[n]}'s)" if n in others else n for n in names]
    shown = ", ".join(named) if len(named) <= 10 else f"{', '.join(named[:10])}, ..."
    question = f"Delete {len(names)} job(s) in {app.namespace} ({shown})?"
    if not app.terminal.confirm(question, assume_yes=yes):
        raise Aborted("nothing deleted")
    # Owners checked above (and named in the prompt): force=True says so.
    app.api.delete(
        *names, force=True, on_deleted=lambda name: app.terminal.line(f"job/{name} deleted")
    )
    if wait:
        app.deadline.extend(wait_seconds)
        with app.terminal.status(f"waiting for the pods of {len(names)} job(s) to go"):
            lifecycle.wait_gone(app.client, app.namespace, names, wait_seconds)
