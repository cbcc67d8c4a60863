from __future__ import annotations

from typing import Annotated, Any

import typer

from ant.cli.clusters import locate
from ant.cli.context import App
from ant.cli.options import Force, JobOrStatefulSet

HELP = """Change a job's pod template: image, env, command, or any field from a file.

Nothing restarts: the change becomes the job's update revision, and 'ant rollout JOB'
(or --rollout) replaces the pods. The new command follows `--`:

\b
  ant update bert --image ghcr.io/lab/train:1.5 --env LR=3e-4
  ant update bert -- python train.py --resume      (--command before `--` is optional)
  ant update bert -f fragment.yaml --rollout --max-unavailable 25%

-f FILE is a pod template fragment ({metadata, spec}, or a job spec's podTemplate:
section) merged like a job spec's podTemplate; flags apply after it. A concurrent edit
by someone else is never overwritten: on a conflict ant re-reads the job and applies
your change again. The change (who, when, what, previous revision) is recorded in the
ant.dev/last-update annotation. Another user's job only with --force."""


def update(
    ctx: typer.Context,
    job: JobOrStatefulSet,
    image: Annotated[
        str | None, typer.Option("--image", help="New image of the main container.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="Set K=V (repeatable).", show_default=False)
    ] = None,
    unset_env: Annotated[
        list[str] | None,
        typer.Option("--unset-env", help="Remove env var K (repeatable).", show_default=False),
    ] = None,
    command: Annotated[
        bool,
        typer.Option("--command", help="Replace the command with what follows `--` (implied)."),
    ] = False,
    file: Annotated[
        str | None,
        typer.Option(
            "--file", "-f", help="YAML pod template fragment to merge.", show_default=False
        ),
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="K=V annotation on the job (repeatable).", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show the diff of the pod template; change nothing."),
    ] = False,
    rollout: Annotated[
        bool, typer.Option("--rollout", help="Then roll the new revision out (ant rollout).")
    ] = False,
    max_unavailable: Annotated[
        str | None,
        typer.Option(
            "--max-unavailable", help="With --rollout: see ant rollout.", show_default=False
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="With --rollout: see ant rollout.", show_default=False),
    ] = None,
    timeout: Annotated[
        str, typer.Option("--timeout", help="With --rollout: see ant rollout.")
    ] = "10m",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --rollout: do not ask.")] = False,
    force: Force = False,
) -> None:
    from ant.cli.commands.rollout import execute, rollout_options
    from ant.errors import UsageError
    from ant.jobs import rollout as ro
    from ant.jobs import spec as jobspec

    app: App = ctx.obj
    app, job = locate(app, job)
    trailing = app.env.trailing_command
    if command and not trailing:
        raise UsageError("--command needs the command after `--`", hint="ant update JOB -- CMD ...")
    if not rollout and (max_unavailable or batch_size is not None):
        raise UsageError("--max-unavailable and --batch-size go with --rollout")
    options = (
        rollout_options(max_unavailable=max_unavailable, batch_size=batch_size, timeout=timeout)
        if rollout
        else None
    )
    pod_template = _load_fragment(file) if file else {}
    change = ro.TemplateChange(
        image=image,
        env=jobspec.parse_pairs(env or [], "--env"),
        unset_env=tuple(unset_env or ()),
        command=tuple(trailing) if trailing else None,
        pod_template=pod_template,
        pod_template_source=file or "",
        meta=jobspec.parse_pairs(meta or [], "--meta"),
    )
    change.validate()  # before contacting the cluster
    by = "" if dry_run else app.template_writer(job, force=force)
    with app.terminal.status(f"updating {job}"):
        result = ro.update(app.client, app.namespace, job, change, by=by, dry_run=dry_run)
    name = result.name
    if dry_run:
        if result.diff:
            app.terminal.write(result.diff)
        else:
            app.terminal.line(f"job/{name}: the pod template would not change")
        return
    if not result.changed:
        note = "annotations updated" if result.written else "unchanged"
        app.terminal.line(f"job/{name} {note}: revision {result.revision or '-'}")
        if not rollout:
            return
    else:
        revision = result.revision or "(not computed yet: see 'ant rollout status')"
        app.terminal.line(
            f"job/{name} updated: revision {revision} (was {result.previous_revision})"
        )
        if result.attempts > 1:
            app.terminal.info(
                f"the job changed while updating; your change was applied to the latest version "
                f"({result.attempts} attempts)"
            )
    if options is None:
        app.terminal.info(f"nothing restarted: 'ant rollout {job}' replaces the pods")
        return
    execute(app, job, options, dry_run=False, yes=yes, force=force)


def _load_fragment(path: str) -> dict[str, Any]:
    """A pod template fragment: {metadata, spec}, or a job spec's {podTemplate: ...}."""
    from ant.errors import ValidationError
    from ant.jobs.spec import read_yaml

    doc = read_yaml(path, "pod template fragment")
    if isinstance(doc, dict) and set(doc) == {"podTemplate"}:
        doc = doc["podTemplate"]
    if not isinstance(doc, dict) or not doc or not set(doc) <= {"metadata", "spec"}:
        raise ValidationError(
            path,
            "a pod template fragment is a mapping with metadata and/or spec",
            hint="e.g. spec: {containers: [{name: main, resources: {...}}]}",
        )
    return doc
