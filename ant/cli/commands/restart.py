from __future__ import annotations

from typing import Annotated, Any

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import Force, JobName

HELP = """Restart replicas: delete their pods so the StatefulSet recreates them.

Without --replica every pod is restarted, after confirmation. Another user's job only
with --force. On a full pool where pods of equal or higher priority wait for what the
restart frees, ant says so and asks first (docs/cli.md); --wait then says where each pod
landed, or that it lost its slot."""


def restart(
    ctx: typer.Context,
    job: JobName,
    replica: Annotated[
        list[int] | None, typer.Option("--replica", "-r", help="Replica index (repeatable).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Until they are Ready again.")] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits.")] = "10m",
    force: Force = False,
) -> None:
    from ant.errors import Aborted
    from ant.jobs import lifecycle, ownership, slots
    from ant.jobs.durations import parse_duration
    from ant.kube import resources as r

    app: App = ctx.obj
    app, job = locate(app, job)
    wait_seconds = parse_duration(timeout, "--timeout")
    found = app.api.get(job, fresh=True)
    first = found.pods[0].pod if found.pods else f"{job}-0"
    other = ownership.check(
        job,
        app.namespace,
        ownership.job_owner(found),
        app.identity(),
        force=force,
        flag="--force",
        probe=ownership.dry_run_delete(app.client, r.PODS, app.namespace, first),
    )
    whose = f" ({other.username}'s job)" if other else ""
    if not replica and not app.terminal.confirm(
        f"Restart all {found.replicas} replicas of {job}{whose}?", assume_yes=yes
    ):
        raise Aborted("nothing restarted")
    risk = slots.check(app.client, found, replica or None)
    if risk.at_risk:
        app.terminal.warn(risk.describe())
        if not app.terminal.confirm("Restart anyway?", assume_yes=yes):
            raise Aborted("nothing restarted")
    deleted = app.api.restart(found, replica or None, force=force, risk_slot=True)
    for pod in deleted:
        app.terminal.line(f"pod/{pod} deleted")
    if wait and deleted:
        app.deadline.extend(wait_seconds)
        with app.terminal.progress(len(deleted), f"waiting for {job}") as progress:
            pods = lifecycle.wait_replaced_and_ready(
                app.client,
                found,
                deleted,
                wait_seconds,
                on_change=progress.update,
                stop_when_unschedulable=True,
            )
        _report(app, [pods[name] for name in deleted if name in pods])


def _report(app: App, pods: list[Any]) -> None:
    """--wait: where each replaced pod landed, or that it lost its slot (exit 1)."""
    from ant.jobs.lifecycle import unschedulable
    from ant.jobs.slots import lost_slots

    for pod in pods:
        if not unschedulable(pod):
            app.terminal.info(f"pod/{pod.metadata.name} is Ready on {pod.spec.nodeName}")
    lost_slots(pods)
