from __future__ import annotations

from typing import Annotated

import typer

from ant.cli import clusters as across
from ant.cli.clusters import locate_all
from ant.cli.context import App
from ant.cli.options import AllUsers, Force, JobNames

HELP = """Delete jobs: their StatefulSet (and so their pods) and Service.

Name jobs, or select them: --mine --all (every job of yours in the namespace),
-l SELECTOR, or --sweep ID (your jobs; with --all-users everyone's), in every selected
cluster. Another user's job named only with --force. Asks first on a terminal; scripts
must pass --yes."""


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
    from ant.jobs.durations import parse_duration
    from ant.jobs.identity import whoami
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
    extra = ",".join(s for s in (selector, f"{schema.SWEEP}={sweep}" if sweep else None) if s)
    if selecting and (clusters := across.selected(app)):
        _delete_selected_across(app, clusters, extra or None, all_users, yes, wait, wait_seconds)
        return
    # Selecting your jobs asks who you are afresh (docs/metadata.md); naming them may
    # use the remembered answer.
    me = whoami(app.client) if selecting else app.identity()
    names = list(jobs or [])
    if selecting:
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


def _delete_selected_across(
    app: App,
    clusters: list[str],
    extra: str | None,
    all_users: bool,
    yes: bool,
    wait: bool,
    wait_seconds: float,
) -> None:
    """--mine --all, -l or --sweep with clusters selected: the matching jobs of each
    cluster (asked at once), one prompt for all, then deleted cluster by cluster. A
    cluster that did not answer is named, and the exit code says the work is partial."""
    from ant.errors import Aborted
    from ant.jobs import lifecycle, ownership, schema
    from ant.jobs.identity import whoami

    def matching(on: App) -> list[tuple[str, str]]:
        """(name, "OWNER's " or "") of each matching job in this cluster."""
        me = whoami(on.client)  # identities differ between clusters
        label_selector = schema.mine_selector(None if all_users else me.label, extra)
        names = sorted(lifecycle.job_names(on.client, on.namespace, label_selector))
        owners = ownership.owners(on.client, on.namespace, names) if all_users else {}
        return [
            (n, f"{o.username}'s" if (o := owners.get(n)) and not o.is_(me) else "") for n in names
        ]

    answers = across.ask_each(app, clusters, matching)
    for answer in answers:
        if answer.error is not None:
            app.terminal.warn(f"cluster {answer.cluster} did not answer: {answer.error}")
    found = [(a.cluster, name, whose) for a in answers for name, whose in a.value or []]
    if not found:
        app.terminal.info(f"no matching jobs in {', '.join(clusters)}")
        across.check_complete(answers)
        return
    named = [f"{c}/{n}" + (f" ({whose})" if whose else "") for c, n, whose in found]
    shown = ", ".join(named) if len(named) <= 10 else f"{', '.join(named[:10])}, ..."
    if not app.terminal.confirm(f"Delete {len(found)} job(s) ({shown})?", assume_yes=yes):
        raise Aborted("nothing deleted")
    for answer in answers:
        names = [name for name, _ in answer.value or []]
        if not names:
            continue
        cluster = answer.cluster
        on = app.for_cluster(cluster, app.deadline_seconds + (wait_seconds if wait else 0))

        def deleted(name: str, cluster: str = cluster) -> None:
            app.terminal.line(f"job/{cluster}/{name} deleted")

        # Selected: the owners were named in the prompt.
        on.api.delete(*names, force=True, on_deleted=deleted, wait=wait, timeout=wait_seconds)
    across.check_complete(answers)
